// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush tracepoints: the one place they are instantiated.
 */
#define CREATE_TRACE_POINTS
#include "trace.h"
