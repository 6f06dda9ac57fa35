/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush helper: the subcommands.
 */
#ifndef PAGEPUSH_CMDS_H
#define PAGEPUSH_CMDS_H

int cmd_new(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif /* PAGEPUSH_CMDS_H */
