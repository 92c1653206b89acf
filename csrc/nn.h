/* nn.h — prototypes of the nn kernels (filled in by their own issue). */
#ifndef FASTOPT_NN_H
#define FASTOPT_NN_H

#include "config.h"

#endif
