#include "cfuzz.h"
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t));
int sofie_fuzz_main(int argc, char **argv, int (*callback)(const uint8_t *, size_t)) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
