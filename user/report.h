/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush helper: printing sessions for people and for scripts.
 */
#ifndef PAGEPUSH_REPORT_H
#define PAGEPUSH_REPORT_H

#include <stdio.h>

#include "nl.h"

double pp_latency_percentile(const struct pp_session_info *info, double pct);
void pp_report_text(FILE *f, const struct pp_session_info *info);
void pp_report_json(FILE *f, const struct pp_session_info *info);
void pp_report_event(FILE *f, const struct pp_session_info *info, bool json);

#endif /* PAGEPUSH_REPORT_H */
