/* ranks: 1-8 */
/*
 * MPI_ERRORS_RETURN: with it set on a communicator, erroneous calls return
 * an error code instead of ending the job; MPI_Error_class maps the code to
 * its class and MPI_Error_string gives a text (not printed: it differs
 * between implementations). MPI_Comm_dup copies the error handler. After
 * the errors the communicator still works.
 */
#include "check.h"

static void expect_class(int rc, int want, const char *what)
{
    int cls = -1, len = 0;
    char text[MPI_MAX_ERROR_STRING];
    CHECK(rc != MPI_SUCCESS, "%s: returned MPI_SUCCESS", what);
    if (rc == MPI_SUCCESS)
        return;
    MPI_Error_class(rc, &cls);
    CHECK(cls == want, "%s: error class %d, expected %d", what, cls, want);
    text[0] = '\0';
    MPI_Error_string(rc, text, &len);
    CHECK(len > 0 && len < MPI_MAX_ERROR_STRING && (int)strlen(text) == len, "%s: Error_string", what);
}

int main(int argc, char **argv)
{
    int rank, size, buf[4] = {0, 0, 0, 0}, len, rc;
    char text[MPI_MAX_ERROR_STRING];
    MPI_Comm dup;
    chk_init(&argc, &argv, &rank, &size);

    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    expect_class(MPI_Send(buf, 1, MPI_INT, size, 0, MPI_COMM_WORLD), MPI_ERR_RANK, "Send to rank == size");
    expect_class(MPI_Send(buf, 1, MPI_INT, -5, 0, MPI_COMM_WORLD), MPI_ERR_RANK, "Send to rank -5");
    expect_class(MPI_Recv(buf, 1, MPI_INT, size + 3, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), MPI_ERR_RANK,
                 "Recv from rank size+3");
    expect_class(MPI_Send(buf, 1, MPI_INT, 0, -1, MPI_COMM_WORLD), MPI_ERR_TAG, "Send with tag -1");
    expect_class(MPI_Send(buf, -1, MPI_INT, 0, 0, MPI_COMM_WORLD), MPI_ERR_COUNT, "Send with count -1");
    expect_class(MPI_Bcast(buf, 1, MPI_INT, size, MPI_COMM_WORLD), MPI_ERR_ROOT, "Bcast with root == size");
    chk_say("errors: MPI_ERRORS_RETURN on world: RANK, TAG, COUNT, ROOT classes: ok");

    /* The handler is copied by Comm_dup. */
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    expect_class(MPI_Send(buf, 1, MPI_INT, size, 0, dup), MPI_ERR_RANK, "Send to an invalid rank on a dup");
    MPI_Comm_free(&dup);

    /* Error_string of a class and of MPI_SUCCESS. */
    MPI_Error_string(MPI_ERR_RANK, text, &len);
    CHECK(len > 0, "Error_string(MPI_ERR_RANK) is empty");
    MPI_Error_string(MPI_SUCCESS, text, &len);
    CHECK(len > 0, "Error_string(MPI_SUCCESS) is empty");
    chk_say("errors: handler copied by Comm_dup; Error_string: ok");

    /* The communicator still works after the errors. */
    rc = MPI_Allreduce(&rank, &buf[0], 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(rc == MPI_SUCCESS && buf[0] == size * (size - 1) / 2, "Allreduce after errors");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    chk_say("errors: communicator usable after returned errors: ok");
    return chk_finish();
}
