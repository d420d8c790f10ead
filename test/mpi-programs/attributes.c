/* ranks: 1-8 */
/*
 * Attribute caching on communicators: Comm_create_keyval with copy and
 * delete callbacks (their calls counted), Comm_set_attr/get_attr (replacing
 * a value calls the delete callback), Comm_dup through the copy callback,
 * MPI_COMM_DUP_FN and MPI_COMM_NULL_COPY_FN, Comm_delete_attr, Comm_free
 * deleting what is left, Comm_free_keyval; the predefined MPI_TAG_UB through
 * Comm_get_attr and the MPI-1 Attr_get.
 */
#include "check.h"

static int copies, deletes, last_deleted;

/* copies a pointer to an int as a new int one larger */
static int copy_plus_one(MPI_Comm old, int keyval, void *extra, void *in, void *out, int *flag)
{
    int *v = malloc(sizeof *v);
    (void)old, (void)keyval;
    *v = *(int *)in + 1 + *(int *)extra;
    *(void **)out = v;
    *flag = 1;
    copies++;
    return MPI_SUCCESS;
}

static int delete_counted(MPI_Comm comm, int keyval, void *value, void *extra)
{
    (void)comm, (void)keyval, (void)extra;
    last_deleted = *(int *)value;
    deletes++;
    free(value);
    return MPI_SUCCESS;
}

int main(int argc, char **argv)
{
    int rank, size, flag, kv, kv_dup, kv_none, zero = 0, *got, *tag_ub;
    int plain = 5;
    void *v;
    MPI_Comm a, b, c2;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("attributes: started on %d ranks", size);

    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
    CHECK(flag && *tag_ub >= 32767, "MPI_TAG_UB %d", flag ? *tag_ub : -1);
    MPI_Attr_get(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
    CHECK(flag && *tag_ub >= 32767, "Attr_get MPI_TAG_UB");
    chk_say("MPI_TAG_UB is at least 32767: ok");

    MPI_Comm_create_keyval(copy_plus_one, delete_counted, &kv, &zero);
    MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN, &kv_dup, NULL);
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &kv_none, NULL);
    MPI_Comm_dup(MPI_COMM_WORLD, &a);
    MPI_Comm_get_attr(a, kv, &v, &flag);
    CHECK(!flag, "no value before it is set");
    got = malloc(sizeof *got);
    *got = 100 + rank;
    MPI_Comm_set_attr(a, kv, got);
    MPI_Comm_set_attr(a, kv_dup, &plain);
    MPI_Comm_set_attr(a, kv_none, &plain);
    got = malloc(sizeof *got);
    *got = 200 + rank;
    MPI_Comm_set_attr(a, kv, got); /* replaces 100 + rank: deleted */
    chk_say("after replacing: %d deletes, the last of %d", deletes, last_deleted - rank);
    MPI_Comm_get_attr(a, kv, &v, &flag);
    CHECK(flag && *(int *)v == 200 + rank, "value %d", flag ? *(int *)v : -1);

    MPI_Comm_dup(a, &b);
    MPI_Comm_get_attr(b, kv, &v, &flag);
    chk_say("dup: %d copies; through the copy callback %s %d", copies, flag ? "present" : "absent", flag ? *(int *)v - rank : -1);
    MPI_Comm_get_attr(b, kv_dup, &v, &flag);
    chk_say("dup: MPI_COMM_DUP_FN value %s, the same pointer %s", flag ? "present" : "absent", flag && v == &plain ? "yes" : "no");
    MPI_Comm_get_attr(b, kv_none, &v, &flag);
    chk_say("dup: MPI_COMM_NULL_COPY_FN value %s", flag ? "present" : "absent");

    MPI_Comm_dup(b, &c2); /* a copy of a copy */
    MPI_Comm_get_attr(c2, kv, &v, &flag);
    chk_say("dup of the dup: %d", flag ? *(int *)v - rank : -1);

    MPI_Comm_delete_attr(b, kv);
    chk_say("delete_attr: %d deletes, the last of %d", deletes, last_deleted - rank);
    MPI_Comm_get_attr(b, kv, &v, &flag);
    CHECK(!flag, "deleted");

    MPI_Comm_free_keyval(&kv); /* still used by a and c2: their values stay */
    CHECK(kv == MPI_KEYVAL_INVALID, "free_keyval sets MPI_KEYVAL_INVALID");
    MPI_Comm_free(&a);
    MPI_Comm_free(&b);
    MPI_Comm_free(&c2);
    chk_say("after freeing the communicators: %d deletes", deletes);
    MPI_Comm_free_keyval(&kv_dup);
    MPI_Comm_free_keyval(&kv_none);
    return chk_finish();
}
