/* instantiate.h — compile a typed kernel body twice, for float (f32) and double (f64).
 *
 *   #define FO_TEMPLATE "adam.inc"
 *   #include "instantiate.h"
 *
 * The body uses FO_T for the element type and FO_TYPED(name) for name_f32 / name_f64;
 * FO_SINGLE is 1 for float, 0 for double (for what exists in one precision only).
 * No include guard on purpose: a .c file includes it once per template. */
#ifndef FO_TEMPLATE
#  error "define FO_TEMPLATE (the .inc file to instantiate) before including instantiate.h"
#endif

#define FO_T float
#define FO_SUFFIX f32
#define FO_SINGLE 1
#include FO_TEMPLATE
#undef FO_T
#undef FO_SUFFIX
#undef FO_SINGLE

#define FO_T double
#define FO_SUFFIX f64
#define FO_SINGLE 0
#include FO_TEMPLATE
#undef FO_T
#undef FO_SUFFIX
#undef FO_SINGLE

#undef FO_TEMPLATE
