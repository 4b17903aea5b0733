#include <stddef.h>
#include <stdint.h>
/// Runs libFuzzer's driver on `callback` (SwiftPM makes its own main() for executables, so the
/// fuzz targets enter libFuzzer through LLVMFuzzerRunDriver instead of libFuzzer's main()).
int sofie_fuzz_main(int argc, char **argv, int (*callback)(const uint8_t *, size_t));
