/* ranks: 1-8 */
/*
 * Handle conversions to Fortran integers and back (MPI_Comm_c2f/f2c and the
 * same for datatypes, groups, requests, ops, infos, errhandlers, windows,
 * files and messages): predefined and created handles come back as
 * themselves, and the converted handles work in calls. MPI_INFO_ENV: readable,
 * duplicable, its keys consistent (maxprocs is the world's size,
 * thread_level the level asked for); under Ferry it names the command, the
 * arguments and the working directory.
 */
#define _GNU_SOURCE
#include "check.h"

#include <time.h>
#include <unistd.h>

static void sum_ints(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int bytes, n;
    MPI_Type_size(*type, &bytes); /* ints of any contiguous int type */
    n = *len * (bytes / (int)sizeof(int));
    for (int i = 0; i < n; i++)
        ((int *)inout)[i] += ((int *)in)[i];
}

static void on_error(MPI_Comm *comm, int *code, ...)
{
    (void)comm;
    (void)code;
}

static void check_info_env(int size, int argc, char **argv)
{
    char key[MPI_MAX_INFO_KEY + 1], value[MPI_MAX_INFO_VAL + 1];
    int n, i, flag, len, copy_n;
    MPI_Info copy, env;

    CHECK_MPI(MPI_Info_get_nkeys(MPI_INFO_ENV, &n));
    for (i = 0; i < n; i++) {
        CHECK_MPI(MPI_Info_get_nthkey(MPI_INFO_ENV, i, key));
        CHECK_MPI(MPI_Info_get_valuelen(MPI_INFO_ENV, key, &len, &flag));
        CHECK(flag, "MPI_INFO_ENV key %s listed but not found", key);
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, key, MPI_MAX_INFO_VAL, value, &flag));
        CHECK(flag && (int)strlen(value) == len, "MPI_INFO_ENV %s: valuelen %d, value '%s'", key, len, value);
    }
    CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "maxprocs", MPI_MAX_INFO_VAL, value, &flag));
    if (flag)
        CHECK_EQ_INT(atoi(value), size, "MPI_INFO_ENV maxprocs");
    CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "thread_level", MPI_MAX_INFO_VAL, value, &flag));
    if (flag)
        CHECK(strcmp(value, "MPI_THREAD_FUNNELED") == 0, "MPI_INFO_ENV thread_level %s", value);
#ifdef FERRY_MPI
    {
        char cwd[MPI_MAX_INFO_VAL + 1];
        const char *base;
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "command", MPI_MAX_INFO_VAL, value, &flag));
        base = strrchr(value, '/');
        CHECK(flag && strcmp(base ? base + 1 : value, "handle-conversions") == 0, "command: flag %d, '%s'", flag,
              value);
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "argv", MPI_MAX_INFO_VAL, value, &flag));
        /* the suite starts programs without arguments; a run by hand may give some */
        CHECK(argc > 1 ? flag && strncmp(value, argv[1], strlen(argv[1])) == 0 : !flag, "argv: flag %d, '%s'",
              flag, value);
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "wdir", MPI_MAX_INFO_VAL, value, &flag));
        CHECK(flag && getcwd(cwd, sizeof cwd) && strcmp(value, cwd) == 0, "wdir: flag %d, '%s'", flag, value);
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "maxprocs", MPI_MAX_INFO_VAL, value, &flag));
        CHECK(flag, "MPI_INFO_ENV has no maxprocs");
        CHECK_MPI(MPI_Info_get(MPI_INFO_ENV, "thread_level", MPI_MAX_INFO_VAL, value, &flag));
        CHECK(flag, "MPI_INFO_ENV has no thread_level");
    }
#else
    (void)argc;
    (void)argv;
#endif
    /* a copy has the same keys and is the program's own */
    CHECK_MPI(MPI_Info_dup(MPI_INFO_ENV, &copy));
    CHECK_MPI(MPI_Info_get_nkeys(copy, &copy_n));
    CHECK_EQ_INT(copy_n, n, "keys of a copy of MPI_INFO_ENV");
    CHECK_MPI(MPI_Info_set(copy, "ferry_test", "1"));
    CHECK_MPI(MPI_Info_get_nkeys(MPI_INFO_ENV, &i));
    CHECK_EQ_INT(i, n, "keys of MPI_INFO_ENV after its copy changed");
    CHECK_MPI(MPI_Info_free(&copy));
    /* through its Fortran integer, too */
    env = MPI_Info_f2c(MPI_Info_c2f(MPI_INFO_ENV));
    CHECK_MPI(MPI_Info_get_nkeys(env, &i));
    CHECK_EQ_INT(i, n, "keys of MPI_INFO_ENV through MPI_Info_f2c");
    chk_report(chk_failures == 0, "MPI_INFO_ENV consistent");
}

int main(int argc, char **argv)
{
    int rank, size, provided, value, flag, buf[4] = {0};
    MPI_Comm dup, comm;
    MPI_Datatype pair, type;
    MPI_Group world_group, group;
    MPI_Request request;
    MPI_Op op;
    MPI_Info info;
    MPI_Errhandler errh;
    MPI_Win win;
    MPI_File fh;
    MPI_Message message;
    MPI_Status status;
    char path[256];

    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    chk_rank = rank;
    chk_say("handle-conversions: started on %d ranks", size);

    /* predefined handles */
    CHECK(MPI_Comm_f2c(MPI_Comm_c2f(MPI_COMM_WORLD)) == MPI_COMM_WORLD, "MPI_COMM_WORLD");
    CHECK(MPI_Comm_f2c(MPI_Comm_c2f(MPI_COMM_SELF)) == MPI_COMM_SELF, "MPI_COMM_SELF");
    CHECK(MPI_Comm_f2c(MPI_Comm_c2f(MPI_COMM_NULL)) == MPI_COMM_NULL, "MPI_COMM_NULL");
    CHECK(MPI_Type_f2c(MPI_Type_c2f(MPI_DOUBLE)) == MPI_DOUBLE, "MPI_DOUBLE");
    CHECK(MPI_Type_f2c(MPI_Type_c2f(MPI_DATATYPE_NULL)) == MPI_DATATYPE_NULL, "MPI_DATATYPE_NULL");
    CHECK(MPI_Group_f2c(MPI_Group_c2f(MPI_GROUP_EMPTY)) == MPI_GROUP_EMPTY, "MPI_GROUP_EMPTY");
    CHECK(MPI_Request_f2c(MPI_Request_c2f(MPI_REQUEST_NULL)) == MPI_REQUEST_NULL, "MPI_REQUEST_NULL");
    CHECK(MPI_Op_f2c(MPI_Op_c2f(MPI_MAX)) == MPI_MAX, "MPI_MAX");
    CHECK(MPI_Info_f2c(MPI_Info_c2f(MPI_INFO_NULL)) == MPI_INFO_NULL, "MPI_INFO_NULL");
    CHECK(MPI_Errhandler_f2c(MPI_Errhandler_c2f(MPI_ERRORS_RETURN)) == MPI_ERRORS_RETURN, "MPI_ERRORS_RETURN");
    CHECK(MPI_Win_f2c(MPI_Win_c2f(MPI_WIN_NULL)) == MPI_WIN_NULL, "MPI_WIN_NULL");
    CHECK(MPI_File_f2c(MPI_File_c2f(MPI_FILE_NULL)) == MPI_FILE_NULL, "MPI_FILE_NULL");
    CHECK(MPI_Message_f2c(MPI_Message_c2f(MPI_MESSAGE_NO_PROC)) == MPI_MESSAGE_NO_PROC, "MPI_MESSAGE_NO_PROC");
    CHECK(MPI_Comm_c2f(MPI_COMM_WORLD) != MPI_Comm_c2f(MPI_COMM_SELF), "WORLD and SELF have one integer");
    chk_report(chk_failures == 0, "predefined handles convert to themselves");

    /* created handles, converted and used through the conversion: a sum over
     * a duplicate with a derived type, a user op and a group's communicator */
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    comm = MPI_Comm_f2c(MPI_Comm_c2f(dup));
    CHECK(comm == dup, "a duplicated communicator");
    MPI_Type_contiguous(2, MPI_INT, &pair);
    MPI_Type_commit(&pair);
    type = MPI_Type_f2c(MPI_Type_c2f(pair));
    CHECK(type == pair, "a derived datatype");
    MPI_Op_create(sum_ints, 1, &op);
    CHECK(MPI_Op_f2c(MPI_Op_c2f(op)) == op, "a user op");
    buf[0] = rank;
    buf[1] = 1;
    MPI_Allreduce(MPI_IN_PLACE, buf, 1, type, MPI_Op_f2c(MPI_Op_c2f(op)), comm);
    CHECK_EQ_INT(buf[0], size * (size - 1) / 2, "sum of ranks through converted handles");
    CHECK_EQ_INT(buf[1], size, "count of ranks through converted handles");

    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    group = MPI_Group_f2c(MPI_Group_c2f(world_group));
    CHECK(group == world_group, "a communicator's group");
    MPI_Group_size(group, &value);
    CHECK_EQ_INT(value, size, "size of the converted group");

    MPI_Info_create(&info);
    MPI_Info_set(info, "ferry_key", "v");
    MPI_Info_get_nkeys(MPI_Info_f2c(MPI_Info_c2f(info)), &value);
    CHECK_EQ_INT(value, 1, "keys through a converted info");
    MPI_Info_free(&info);

    MPI_Comm_create_errhandler(on_error, &errh);
    CHECK(MPI_Errhandler_f2c(MPI_Errhandler_c2f(errh)) == errh, "a created errhandler");
    MPI_Comm_set_errhandler(comm, MPI_Errhandler_f2c(MPI_Errhandler_c2f(errh)));
    MPI_Errhandler_free(&errh);

    /* a request converted while pending, completed through the conversion */
    MPI_Irecv(&value, 1, MPI_INT, (rank + size - 1) % size, 7, comm, &request);
    MPI_Send(&rank, 1, MPI_INT, (rank + 1) % size, 7, comm); /* to itself on one rank: the receive is posted */
    request = MPI_Request_f2c(MPI_Request_c2f(request));
    MPI_Wait(&request, &status);
    CHECK_EQ_INT(value, (rank + size - 1) % size, "message received through a converted request");

    /* a matched message */
    MPI_Isend(&rank, 1, MPI_INT, (rank + 1) % size, 8, comm, &request);
    flag = 0;
    while (!flag)
        MPI_Improbe((rank + size - 1) % size, 8, comm, &flag, &message, &status);
    message = MPI_Message_f2c(MPI_Message_c2f(message));
    MPI_Mrecv(&value, 1, MPI_INT, &message, &status);
    MPI_Wait(&request, MPI_STATUS_IGNORE);
    CHECK_EQ_INT(value, (rank + size - 1) % size, "message received through a converted message handle");

    /* a window: each rank puts its rank into the next one's */
    value = -1;
    MPI_Win_create(&value, sizeof value, sizeof value, MPI_INFO_NULL, comm, &win);
    CHECK(MPI_Win_f2c(MPI_Win_c2f(win)) == win, "a window");
    MPI_Win_fence(0, MPI_Win_f2c(MPI_Win_c2f(win)));
    MPI_Put(&rank, 1, MPI_INT, (rank + 1) % size, 0, 1, MPI_INT, MPI_Win_f2c(MPI_Win_c2f(win)));
    MPI_Win_fence(0, MPI_Win_f2c(MPI_Win_c2f(win)));
    CHECK_EQ_INT(value, (rank + size - 1) % size, "put through a converted window");
    MPI_Win_free(&win);

    /* a file: the size written through the converted handle */
    if (rank == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(path, sizeof path, "/tmp/ferry-handle-conversions-%ld-%ld%09ld.dat", (long)getpid(),
                 (long)now.tv_sec, (long)now.tv_nsec);
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK_MPI(MPI_File_open(comm, path, MPI_MODE_CREATE | MPI_MODE_RDWR | MPI_MODE_DELETE_ON_CLOSE, MPI_INFO_NULL,
                            &fh));
    CHECK(MPI_File_f2c(MPI_File_c2f(fh)) == fh, "a file");
    CHECK_MPI(MPI_File_write_at_all(MPI_File_f2c(MPI_File_c2f(fh)), (MPI_Offset)rank * 4, &rank, 1, MPI_INT, &status));
    {
        MPI_Offset fsize = 0;
        MPI_Barrier(comm); /* every rank's write done (POSIX files: seen once written) */
        CHECK_MPI(MPI_File_get_size(MPI_File_f2c(MPI_File_c2f(fh)), &fsize));
        CHECK_EQ_INT(fsize, size * 4, "size of the file written through a converted handle");
    }
    CHECK_MPI(MPI_File_close(&fh));
    chk_report(chk_failures == 0, "created handles convert to themselves and work converted");

    check_info_env(size, argc, argv);

    MPI_Group_free(&world_group);
    MPI_Op_free(&op);
    MPI_Type_free(&pair);
    MPI_Comm_free(&dup);
    return chk_finish();
}
