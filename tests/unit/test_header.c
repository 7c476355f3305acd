/* Compile-only check that the public header is self-contained C11 (-pedantic), plus a trivial link-free run. */
#include "gemma4c.h"

int main(void) {
    g4c_err err = {0};
    (void)err;
    return G4C_OK;
}
