/* Collectives and communicators, self-checking: every collective on
 * MPI_COMM_WORLD and on a split communicator, predefined ops on several types,
 * MINLOC/MAXLOC, a non-commutative user op, MPI_IN_PLACE, derived datatypes.
 * Prints "coll ok" on rank 0 when every check passed. */
#include <string.h>
#include "check.h"

/* non-commutative: 2x2 matrix product, inout = in * inout */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *t)
{
  (void)t;
  int *a = in, *b = inout;
  for (int i = 0; i < *len; i++, a += 4, b += 4) {
    int c[4] = { a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
                 a[2] * b[1] + a[3] * b[3] };
    memcpy(b, c, sizeof c);
  }
}

static void test_comm(MPI_Comm comm, const char *name)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  MPI_Barrier(comm);

  /* Bcast from every root */
  for (int root = 0; root < size; root++) {
    double v[5] = { 0 };
    if (rank == root)
      for (int i = 0; i < 5; i++)
        v[i] = root * 10 + i + 0.5;
    MPI_Bcast(v, 5, MPI_DOUBLE, root, comm);
    for (int i = 0; i < 5; i++)
      CHECK(v[i] == root * 10 + i + 0.5, "%s bcast root %d", name, root);
  }

  /* Reduce / Allreduce with several ops and types */
  long long ls = 0, lsum = rank + 1;
  MPI_Reduce(&lsum, &ls, 1, MPI_LONG_LONG, MPI_SUM, size - 1, comm);
  if (rank == size - 1)
    CHECK(ls == (long long)size * (size + 1) / 2, "%s reduce sum %lld", name, ls);
  int iv[4] = { rank, -rank, 1 << rank, rank % 2 }, io[4];
  MPI_Allreduce(&iv[0], &io[0], 1, MPI_INT, MPI_MAX, comm);
  MPI_Allreduce(&iv[1], &io[1], 1, MPI_INT, MPI_MIN, comm);
  MPI_Allreduce(&iv[2], &io[2], 1, MPI_INT, MPI_BOR, comm);
  MPI_Allreduce(&iv[3], &io[3], 1, MPI_INT, MPI_LXOR, comm);
  CHECK(io[0] == size - 1 && io[1] == -(size - 1) && io[2] == (1 << size) - 1 && io[3] == (size / 2) % 2,
        "%s allreduce %d %d %d %d", name, io[0], io[1], io[2], io[3]);
  float f = 1.5f, fp;
  MPI_Allreduce(&f, &fp, 1, MPI_FLOAT, MPI_PROD, comm);
  float want = 1;
  for (int i = 0; i < size; i++)
    want *= 1.5f;
  CHECK(fp == want, "%s prod %g", name, fp);
  unsigned char band = (unsigned char)(0xff ^ (1 << rank)), bo;
  MPI_Allreduce(&band, &bo, 1, MPI_UNSIGNED_CHAR, MPI_BAND, comm);
  CHECK(bo == (unsigned char)(0xff & ~((1 << size) - 1)), "%s band %x", name, bo);
  int land = rank < size, lo;
  MPI_Allreduce(&land, &lo, 1, MPI_INT, MPI_LAND, comm);
  CHECK(lo == 1, "%s land", name);
  uint64_t u = (uint64_t)rank << 40, uo;
  MPI_Allreduce(&u, &uo, 1, MPI_UINT64_T, MPI_BXOR, comm);
  uint64_t uw = 0;
  for (int i = 0; i < size; i++)
    uw ^= (uint64_t)i << 40;
  CHECK(uo == uw, "%s bxor", name);

  /* MINLOC / MAXLOC */
  struct { double v; int i; } dv = { (rank * 7) % size, rank }, dmin, dmax;
  MPI_Allreduce(&dv, &dmin, 1, MPI_DOUBLE_INT, MPI_MINLOC, comm);
  MPI_Allreduce(&dv, &dmax, 1, MPI_DOUBLE_INT, MPI_MAXLOC, comm);
  CHECK(dmin.v == 0 && dmin.i == 0, "%s minloc %g %d", name, dmin.v, dmin.i);
  CHECK(dmax.v == size - 1, "%s maxloc %g", name, dmax.v);
  int p2[2] = { rank % 2, rank }, p2o[2];
  MPI_Allreduce(p2, p2o, 1, MPI_2INT, MPI_MAXLOC, comm);
  CHECK(p2o[0] == (size > 1) && p2o[1] == (size > 1), "%s 2int maxloc %d %d", name, p2o[0], p2o[1]);

  /* non-commutative user op: the product of per-rank matrices in rank order */
  MPI_Op mm;
  MPI_Op_create(matmul, 0, &mm);
  int m[4] = { 1, rank + 1, 0, 1 }, mo[4];
  MPI_Datatype mat;
  MPI_Type_contiguous(4, MPI_INT, &mat);
  MPI_Type_commit(&mat);
  MPI_Reduce(m, mo, 1, mat, mm, 0, comm);
  if (rank == 0) {
    int want01 = 0;
    for (int i = 0; i < size; i++)
      want01 += i + 1;
    CHECK(mo[0] == 1 && mo[1] == want01 && mo[2] == 0 && mo[3] == 1, "%s matmul %d", name, mo[1]);
  }
  MPI_Op_free(&mm);

  /* IN_PLACE Reduce of a long vector (rendezvous-sized) to every root, the root inside the tree: not in
   * test/mpi-programs because Debian's MPICH 4.0.2 crashes on it (pmodels/mpich#6540) */
  enum { LONG_N = 5003 };
  long long *lv = malloc(sizeof(long long) * LONG_N);
  for (int root = 0; root < size; root++) {
    for (int i = 0; i < LONG_N; i++)
      lv[i] = (long long)i * 1000 + rank;
    MPI_Reduce(rank == root ? MPI_IN_PLACE : lv, rank == root ? lv : NULL, LONG_N, MPI_LONG_LONG, MPI_SUM, root, comm);
    if (rank == root) {
      int bad = 0;
      for (int i = 0; i < LONG_N; i++)
        bad += lv[i] != (long long)i * 1000 * size + (long long)size * (size - 1) / 2;
      CHECK(bad == 0, "%s in-place reduce of %d long longs to root %d: %d wrong", name, LONG_N, root, bad);
    }
  }
  free(lv);

  /* IN_PLACE allreduce */
  int ip[3] = { rank, 1, 2 * rank };
  MPI_Allreduce(MPI_IN_PLACE, ip, 3, MPI_INT, MPI_SUM, comm);
  CHECK(ip[0] == size * (size - 1) / 2 && ip[1] == size && ip[2] == size * (size - 1), "%s inplace", name);

  /* Gather / Scatter / Allgather / Alltoall (+v) */
  int *all = malloc(sizeof(int) * 4 * (size_t)size), *all2 = malloc(sizeof(int) * 4 * (size_t)size);
  int mine[2] = { rank * 2, rank * 2 + 1 };
  MPI_Gather(mine, 2, MPI_INT, all, 2, MPI_INT, 0, comm);
  if (rank == 0)
    for (int i = 0; i < 2 * size; i++)
      CHECK(all[i] == i, "%s gather %d", name, i);
  MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, comm);
  for (int i = 0; i < 2 * size; i++)
    CHECK(all[i] == i, "%s allgather %d", name, i);
  int sc[2];
  MPI_Scatter(all, 2, MPI_INT, sc, 2, MPI_INT, size - 1, comm);
  CHECK(sc[0] == 2 * rank && sc[1] == 2 * rank + 1, "%s scatter", name);
  for (int i = 0; i < size; i++)
    all[i] = rank * 100 + i;
  MPI_Alltoall(all, 1, MPI_INT, all2, 1, MPI_INT, comm);
  for (int i = 0; i < size; i++)
    CHECK(all2[i] == i * 100 + rank, "%s alltoall %d", name, i);
  int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
  int tot = 0;
  for (int i = 0; i < size; i++) {
    counts[i] = i + 1;
    displs[i] = tot;
    tot += i + 1;
  }
  int *vbuf = malloc(sizeof(int) * (size_t)tot), *mv = malloc(sizeof(int) * (size_t)(rank + 1));
  for (int i = 0; i <= rank; i++)
    mv[i] = rank;
  MPI_Allgatherv(mv, rank + 1, MPI_INT, vbuf, counts, displs, MPI_INT, comm);
  for (int i = 0; i < size; i++)
    for (int k = 0; k <= i; k++)
      CHECK(vbuf[displs[i] + k] == i, "%s allgatherv", name);
  MPI_Gatherv(mv, rank + 1, MPI_INT, vbuf, counts, displs, MPI_INT, 0, comm);
  int got[64];
  MPI_Scatterv(vbuf, counts, displs, MPI_INT, got, rank + 1, MPI_INT, 0, comm);
  for (int k = 0; k <= rank; k++)
    CHECK(got[k] == rank, "%s scatterv", name);
  /* alltoallv: rank r sends j+1 copies of r*10+j to rank j */
  int *sbuf = malloc(sizeof(int) * (size_t)tot), *scnt = malloc(sizeof(int) * (size_t)size),
      *sdis = malloc(sizeof(int) * (size_t)size), *rbuf = malloc(sizeof(int) * (size_t)size * (size_t)(rank + 1)),
      *rcnt = malloc(sizeof(int) * (size_t)size), *rdis = malloc(sizeof(int) * (size_t)size);
  for (int j = 0, o = 0; j < size; j++) {
    scnt[j] = j + 1;
    sdis[j] = o;
    for (int k = 0; k <= j; k++)
      sbuf[o++] = rank * 10 + j;
    rcnt[j] = rank + 1;
    rdis[j] = j * (rank + 1);
  }
  MPI_Alltoallv(sbuf, scnt, sdis, MPI_INT, rbuf, rcnt, rdis, MPI_INT, comm);
  for (int j = 0; j < size; j++)
    for (int k = 0; k <= rank; k++)
      CHECK(rbuf[j * (rank + 1) + k] == j * 10 + rank, "%s alltoallv", name);

  /* Reduce_scatter_block, Scan, Exscan */
  for (int i = 0; i < size; i++)
    all[i] = i + rank;
  int rsb;
  MPI_Reduce_scatter_block(all, &rsb, 1, MPI_INT, MPI_SUM, comm);
  CHECK(rsb == size * rank + size * (size - 1) / 2, "%s reduce_scatter_block %d", name, rsb);
  int sv = rank + 1, so, eo = -7;
  MPI_Scan(&sv, &so, 1, MPI_INT, MPI_SUM, comm);
  CHECK(so == (rank + 1) * (rank + 2) / 2, "%s scan %d", name, so);
  MPI_Exscan(&sv, &eo, 1, MPI_INT, MPI_SUM, comm);
  if (rank > 0)
    CHECK(eo == rank * (rank + 1) / 2, "%s exscan %d", name, eo);

  free(all); free(all2); free(counts); free(displs); free(vbuf); free(mv);
  free(sbuf); free(scnt); free(sdis); free(rbuf); free(rcnt); free(rdis);
  MPI_Type_free(&mat);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  test_comm(MPI_COMM_WORLD, "world");

  MPI_Comm half, dup;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, -rank, &half);
  int hr, hs;
  MPI_Comm_rank(half, &hr);
  MPI_Comm_size(half, &hs);
  CHECK(hs == (size + 1 - rank % 2) / 2, "split size %d", hs);
  CHECK(hr == hs - 1 - rank / 2, "split rank %d (key -rank reverses)", hr);
  test_comm(half, "half");
  MPI_Comm_dup(half, &dup);
  int cmp;
  MPI_Comm_compare(half, dup, &cmp);
  CHECK(cmp == MPI_CONGRUENT, "compare dup %d", cmp);
  test_comm(dup, "dup");
  MPI_Group wg, hg;
  MPI_Comm_group(MPI_COMM_WORLD, &wg);
  MPI_Comm_group(half, &hg);
  int zero = 0, tr;
  MPI_Group_translate_ranks(hg, 1, &zero, wg, &tr);
  int top = rank % 2 + 2 * ((size - 1 - rank % 2) / 2);
  CHECK(tr == top, "translate %d want %d", tr, top);
  MPI_Group even;
  int evens[8], ne = 0;
  for (int i = 0; i < size; i += 2)
    evens[ne++] = i;
  MPI_Group_incl(wg, ne, evens, &even);
  MPI_Comm ecomm;
  MPI_Comm_create(MPI_COMM_WORLD, even, &ecomm);
  CHECK((ecomm == MPI_COMM_NULL) == (rank % 2 == 1), "comm_create membership");
  if (ecomm != MPI_COMM_NULL) {
    test_comm(ecomm, "even");
    MPI_Comm_free(&ecomm);
  }
  MPI_Group_free(&even);
  MPI_Group_free(&wg);
  MPI_Group_free(&hg);
  MPI_Comm_free(&dup);
  MPI_Comm_free(&half);

  /* derived datatypes over point to point: a vector column and a struct */
  int grid[4][5];
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 5; k++)
      grid[i][k] = rank * 1000 + i * 10 + k;
  MPI_Datatype col;
  MPI_Type_vector(4, 1, 5, MPI_INT, &col);
  MPI_Type_commit(&col);
  int colv[4];
  int right = (rank + 1) % size, left = (rank - 1 + size) % size;
  MPI_Sendrecv(&grid[0][2], 1, col, right, 0, colv, 4, MPI_INT, left, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  for (int i = 0; i < 4; i++)
    CHECK(colv[i] == left * 1000 + i * 10 + 2, "vector %d", colv[i]);
  struct rec { char c; double d; int n[3]; } rs = { 'a' + (char)rank, rank * 0.25, { rank, 2 * rank, 3 * rank } }, rr;
  int bl[3] = { 1, 1, 3 };
  MPI_Aint dis[3] = { offsetof(struct rec, c), offsetof(struct rec, d), offsetof(struct rec, n) };
  MPI_Datatype ty[3] = { MPI_CHAR, MPI_DOUBLE, MPI_INT }, rect;
  MPI_Type_create_struct(3, bl, dis, ty, &rect);
  MPI_Type_commit(&rect);
  MPI_Aint lb, ext;
  MPI_Type_get_extent(rect, &lb, &ext);
  int tsz;
  MPI_Type_size(rect, &tsz);
  CHECK(lb == 0 && ext == sizeof(struct rec) && tsz == 1 + 8 + 12, "struct extent %ld size %d", (long)ext, tsz);
  MPI_Sendrecv(&rs, 1, rect, right, 1, &rr, 1, rect, left, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  CHECK(rr.c == 'a' + left && rr.d == left * 0.25 && rr.n[2] == 3 * left, "struct recv");
  int idxb[2] = { 2, 1 }, idxd[2] = { 0, 4 }, iv[5] = { 1, 2, 3, 4, 5 }, io[3];
  MPI_Datatype ind;
  MPI_Type_indexed(2, idxb, idxd, MPI_INT, &ind);
  MPI_Type_commit(&ind);
  MPI_Sendrecv(iv, 1, ind, rank, 2, io, 3, MPI_INT, rank, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  CHECK(io[0] == 1 && io[1] == 2 && io[2] == 5, "indexed");
  MPI_Type_free(&ind);
  MPI_Type_free(&rect);
  MPI_Type_free(&col);

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    printf("coll ok size %d\n", size);
  MPI_Finalize();
  return 0;
}
