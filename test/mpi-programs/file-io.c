/* ranks: 1-8 */
/*
 * MPI-IO on a shared file: File_open (CREATE, EXCL, DELETE_ON_CLOSE, errors),
 * write_at_all of a block per rank, a strided view (etype MPI_INT, a resized
 * filetype interleaving the ranks, a displacement per rank) written through
 * the individual pointer, read back whole under the default view; seek
 * (SET/CUR/END), get_position, get_byte_offset, get_size/set_size/
 * preallocate/sync, a read past the end (Get_count), iread_at/iwrite_at,
 * get_amode/get_group/get_view, the shared file pointer (write_ordered,
 * write_shared, read_ordered, seek_shared, get_position_shared), and the
 * error classes of failed opens.
 */
#include <unistd.h>

#include <time.h>

#include "check.h"

#define BLOCK 6 /* ints per rank in the first part of the file */
#define PAIRS 3 /* pairs of ints per rank in the strided part */

int main(int argc, char **argv)
{
    int rank, size, i, rc, cls, count, amode, cmp;
    char path[256];
    MPI_File fh;
    MPI_Status st;
    MPI_Offset off, fsize;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("file-io: started on %d ranks", size);

    /* one path for every rank: rank 0's pid and clock in it (under Ferry every rank is pid 2 of its own
     * pid namespace, so the pid alone names the same file in every run) */
    if (rank == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(path, sizeof path, "/tmp/ferry-file-io-%ld-%ld%09ld.dat", (long)getpid(), (long)now.tv_sec,
                 (long)now.tv_nsec);
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);

    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    chk_say("open of a missing file: %s, handle %s", cls == MPI_ERR_NO_SUCH_FILE ? "MPI_ERR_NO_SUCH_FILE" : "another",
            fh == MPI_FILE_NULL ? "MPI_FILE_NULL" : "set");
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    chk_say("open RDONLY|WRONLY: %s", cls == MPI_ERR_AMODE ? "MPI_ERR_AMODE" : "another");

    CHECK_MPI(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_RDWR, MPI_INFO_NULL, &fh));
    MPI_File_get_amode(fh, &amode);
    chk_say("amode kept: %d", amode == (MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_RDWR));
    MPI_Group fg, wg;
    MPI_File_get_group(fh, &fg);
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_compare(fg, wg, &cmp);
    chk_say("file group: %s", cmp == MPI_IDENT ? "MPI_IDENT" : "not the world's");
    MPI_Group_free(&fg);
    MPI_Group_free(&wg);

    /* part 1: a block per rank at byte offset rank * BLOCK ints */
    int mine[BLOCK];
    for (i = 0; i < BLOCK; i++)
        mine[i] = rank * 1000 + i;
    CHECK_MPI(MPI_File_write_at_all(fh, (MPI_Offset)rank * BLOCK * sizeof(int), mine, BLOCK, MPI_INT, &st));
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, BLOCK, "write_at_all count");

    /* part 2: after the blocks, pairs of ints interleaved: rank r owns ints 2r, 2r+1 of every 2*size */
    MPI_Datatype pair, tile;
    MPI_Type_contiguous(2, MPI_INT, &pair);
    MPI_Type_create_resized(pair, 0, (MPI_Aint)(2 * size * sizeof(int)), &tile);
    MPI_Type_commit(&tile);
    MPI_Offset base = (MPI_Offset)size * BLOCK * sizeof(int);
    CHECK_MPI(MPI_File_set_view(fh, base + (MPI_Offset)rank * 2 * sizeof(int), MPI_INT, tile, "native", MPI_INFO_NULL));
    MPI_Type_free(&pair);
    MPI_Type_free(&tile); /* the view keeps its own */
    int strided[2 * PAIRS];
    for (i = 0; i < 2 * PAIRS; i++)
        strided[i] = -(rank * 100 + i);
    CHECK_MPI(MPI_File_write_all(fh, strided, 2 * PAIRS, MPI_INT, MPI_STATUS_IGNORE));
    MPI_File_get_position(fh, &off);
    chk_say("position after the strided write: %lld etypes", (long long)off);
    MPI_File_get_byte_offset(fh, 3, &off); /* the 4th int of the view: the 2nd of the second pair */
    CHECK_EQ_INT(off, base + (MPI_Offset)rank * 2 * sizeof(int) + (MPI_Offset)2 * size * sizeof(int) + sizeof(int),
                 "get_byte_offset");
    MPI_Offset vdisp;
    MPI_Datatype ve, vf;
    char rep[MPI_MAX_DATAREP_STRING];
    MPI_File_get_view(fh, &vdisp, &ve, &vf, rep);
    MPI_Aint vlb, vext;
    MPI_Type_get_extent(vf, &vlb, &vext);
    chk_say("view: etype %s, filetype extent %ld, datarep %s", ve == MPI_INT ? "MPI_INT" : "?", (long)vext, rep);
    if (vf != MPI_INT)
        MPI_Type_free(&vf);
    /* read back the second pair of mine through the view, from the pointer after a seek */
    int back[2] = { 0, 0 };
    MPI_File_seek(fh, 2, MPI_SEEK_SET);
    MPI_File_read(fh, back, 2, MPI_INT, &st);
    CHECK(back[0] == strided[2] && back[1] == strided[3], "read through the view: %d %d", back[0], back[1]);
    MPI_File_seek(fh, -2, MPI_SEEK_CUR);
    MPI_File_get_position(fh, &off);
    CHECK_EQ_INT(off, 2, "SEEK_CUR");
    MPI_File_sync(fh);
    MPI_File_seek(fh, 0, MPI_SEEK_END);
    MPI_File_get_position(fh, &off);
    chk_say("SEEK_END in the view: %lld etypes", (long long)off);

    /* the whole file under the default view, on rank 0 */
    MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL);
    MPI_File_get_size(fh, &fsize);
    chk_say("file size: %lld bytes", (long long)fsize);
    int total = (int)(fsize / (MPI_Offset)sizeof(int));
    int *all = malloc(sizeof(int) * (total + 4));
    MPI_File_read_at_all(fh, 0, all, total, MPI_INT, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, total, "read_at_all count");
    if (rank == 0) {
        int tail[8];
        MPI_File_read_at(fh, fsize - 2 * sizeof(int), tail, 8, MPI_INT, &st); /* past the end: what is there */
        MPI_Get_count(&st, MPI_INT, &i);
        chk_say("read of 8 ints 2 before the end: %d ints", i);
        long long sum = 0;
        for (i = 0; i < count; i++)
            sum += (long long)(i + 1) * all[i];
        chk_say("checksum %lld; ints %d %d %d ... %d %d", sum, all[0], all[1], all[BLOCK], all[count - 2],
                all[count - 1]);
        for (i = 0; i < size * BLOCK; i++)
            CHECK(all[i] == (i / BLOCK) * 1000 + i % BLOCK, "block part, int %d: %d", i, all[i]);
        for (i = 0; i < size * 2 * PAIRS; i++) {
            int owner = (i % (2 * size)) / 2, k = (i / (2 * size)) * 2 + i % 2;
            CHECK(all[size * BLOCK + i] == -(owner * 100 + k), "strided part, int %d: %d", i, all[size * BLOCK + i]);
        }
    }
    free(all);
    MPI_Barrier(MPI_COMM_WORLD); /* rank 0 read to the end before anyone writes past it */

    /* a strided memory type: every other int of a buffer out, and back into every third */
    MPI_Datatype every2, every3;
    MPI_Type_vector(4, 1, 2, MPI_INT, &every2);
    MPI_Type_vector(4, 1, 3, MPI_INT, &every3);
    MPI_Type_commit(&every2);
    MPI_Type_commit(&every3);
    int spread[8], spread3[12];
    for (i = 0; i < 8; i++)
        spread[i] = rank * 10 + i;
    for (i = 0; i < 12; i++)
        spread3[i] = -1;
    MPI_Offset mine_at = fsize + (MPI_Offset)(size + rank) * 4 * sizeof(int); /* past the words below */
    CHECK_MPI(MPI_File_write_at(fh, mine_at, spread, 1, every2, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_File_read_at(fh, mine_at, spread3, 1, every3, &st));
    MPI_Get_count(&st, every3, &count);
    CHECK(count == 1 && spread3[0] == spread[0] && spread3[3] == spread[2] && spread3[6] == spread[4] &&
              spread3[9] == spread[6] && spread3[1] == -1,
          "strided memory types: %d %d %d %d", spread3[0], spread3[3], spread3[6], spread3[9]);
    chk_say("strided memory types through the file: rank 0 got %d %d %d %d", spread3[0], spread3[3], spread3[6],
            spread3[9]);
    MPI_Type_free(&every2);
    MPI_Type_free(&every3);
    MPI_Barrier(MPI_COMM_WORLD);

    /* nonblocking at explicit offsets, then resized */
    MPI_Request rq;
    int word = 4242 + rank, got = 0;
    MPI_File_iwrite_at(fh, fsize + (MPI_Offset)rank * sizeof(int), &word, 1, MPI_INT, &rq);
    MPI_Wait(&rq, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, 1, "iwrite_at count");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_File_iread_at(fh, fsize + (MPI_Offset)((rank + 1) % size) * sizeof(int), &got, 1, MPI_INT, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    CHECK_EQ_INT(got, 4242 + (rank + 1) % size, "iread_at of the next rank's word");
    MPI_File_set_size(fh, 8);
    MPI_File_get_size(fh, &fsize);
    chk_say("after set_size 8: %lld bytes", (long long)fsize);
    MPI_File_preallocate(fh, 64);
    MPI_File_get_size(fh, &fsize);
    chk_say("after preallocate 64: %lld bytes", (long long)fsize);
    CHECK_MPI(MPI_File_close(&fh));
    CHECK(fh == MPI_FILE_NULL, "File_close sets MPI_FILE_NULL");

    /* the shared file pointer: write_ordered (rank order), write_shared (some order), read back ordered */
    char logpath[300];
    MPI_File lf;
    snprintf(logpath, sizeof logpath, "%s.log", path);
    CHECK_MPI(MPI_File_open(MPI_COMM_WORLD, logpath, MPI_MODE_CREATE | MPI_MODE_RDWR | MPI_MODE_DELETE_ON_CLOSE,
                            MPI_INFO_NULL, &lf));
    MPI_File_set_view(lf, 0, MPI_INT, MPI_INT, "native", MPI_INFO_NULL);
    int ord[8], one = 100 + rank;
    for (i = 0; i <= rank; i++)
        ord[i] = rank * 10 + i;
    CHECK_MPI(MPI_File_write_ordered(lf, ord, rank + 1, MPI_INT, MPI_STATUS_IGNORE));
    CHECK_MPI(MPI_File_write_shared(lf, &one, 1, MPI_INT, MPI_STATUS_IGNORE));
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_File_get_position_shared(lf, &off);
    chk_say("shared pointer after write_ordered and write_shared: %lld ints", (long long)off);
    MPI_File_seek_shared(lf, 0, MPI_SEEK_SET);
    int n_ordered = size * (size + 1) / 2, *logall = malloc(sizeof(int) * (n_ordered + size)), got_ints;
    /* rank 0 takes everything in one ordered read, the others nothing */
    MPI_File_read_ordered(lf, logall, rank == 0 ? n_ordered + size : 0, MPI_INT, &st);
    MPI_Get_count(&st, MPI_INT, &got_ints);
    if (rank == 0) {
        int shared_sum = 0;
        for (i = 0; i < size; i++)
            shared_sum += logall[n_ordered + i];
        chk_say("read_ordered: %d ints; ordered part %d %d ... %d; write_shared part sums to %d", got_ints, logall[0],
                n_ordered > 1 ? logall[1] : -1, logall[n_ordered - 1], shared_sum);
        int k = 0, r, j;
        for (r = 0; r < size; r++)
            for (j = 0; j <= r; j++, k++)
                CHECK(logall[k] == r * 10 + j, "ordered int %d: %d", k, logall[k]);
    }
    MPI_File_seek_shared(lf, -2, MPI_SEEK_END);
    MPI_File_get_position_shared(lf, &off);
    chk_say("seek_shared 2 before the end: %lld", (long long)off);
    free(logall);
    MPI_File_close(&lf);
    chk_say("log deleted on close: %s", access(logpath, F_OK) != 0 ? "yes" : "no");

    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
    MPI_Error_class(rc, &cls);
    chk_say("EXCL open of an existing file: %s", cls == MPI_ERR_FILE_EXISTS ? "MPI_ERR_FILE_EXISTS" : "another");
    CHECK_MPI(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY | MPI_MODE_DELETE_ON_CLOSE, MPI_INFO_NULL, &fh));
    MPI_File_read_at(fh, 4, &got, 1, MPI_INT, MPI_STATUS_IGNORE);
    chk_say("int at byte 4 after the resize: %d", got);
    MPI_File_close(&fh);
    chk_say("deleted on close: %s", access(path, F_OK) != 0 ? "yes" : "no");
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        rc = MPI_File_delete(path, MPI_INFO_NULL);
        MPI_Error_class(rc, &cls);
        chk_say("delete of the deleted file: %s", cls == MPI_ERR_NO_SUCH_FILE ? "MPI_ERR_NO_SUCH_FILE" : "another");
    }
    return chk_finish();
}
