// HDF5's type and property ids are macros that call H5open() and read globals;
// Swift cannot import them, so each one we use is wrapped here.
#include <hdf5.h>

static inline hid_t sofie_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t sofie_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t sofie_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t sofie_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t sofie_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t sofie_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t sofie_H5T_C_S1(void) { return H5T_C_S1; }
static inline unsigned sofie_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline hid_t sofie_H5S_ALL(void) { return H5S_ALL; }
static inline size_t sofie_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t sofie_H5E_DEFAULT(void) { return H5E_DEFAULT; }
/* Silences HDF5's own error printing: every failure is reported by the caller instead. */
static inline void sofie_H5_silence(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
