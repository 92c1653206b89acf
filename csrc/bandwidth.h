/* bandwidth.h — prototypes of the bandwidth kernels (filled in by their own issue). */
#ifndef FASTOPT_BANDWIDTH_H
#define FASTOPT_BANDWIDTH_H

#include "config.h"

#endif
