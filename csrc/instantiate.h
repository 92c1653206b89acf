/* instantiate.h — compile a typed kernel body twice, for float (f32) and double (f64).
 *
 *   #define FO_TEMPLATE "adam.inc"
 *   #include "instantiate.h"
 *
 * The body uses FO_T for the element type and FO_TYPED(name) for name_f32 / name_f64.
 * No include guard on purpose: a .c file includes it once per template. */
#ifndef FO_TEMPLATE
#  error "define FO_TEMPLATE (the .inc file to instantiate) before including instantiate.h"
#endif

#define FO_T float
#define FO_SUFFIX f32
#include FO_TEMPLATE
#undef FO_T
#undef FO_SUFFIX

#define FO_T double
#define FO_SUFFIX f64
#include FO_TEMPLATE
#undef FO_T
#undef FO_SUFFIX

#undef FO_TEMPLATE
