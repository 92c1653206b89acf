/* linalg.h — prototypes of the linalg kernels (filled in by their own issue). */
#ifndef FASTOPT_LINALG_H
#define FASTOPT_LINALG_H

#include "config.h"

#endif
