/*
 * cli.h - the dmfs subcommands (cli_*.c), dispatched from main.c.
 * Each takes the arguments after its name and returns the exit status.
 */
#ifndef DMFS_CLI_H
#define DMFS_CLI_H

int cli_mount(int argc, char **argv);
int cli_umount(int argc, char **argv);
int cli_snapshot(int argc, char **argv);
int cli_commit(int argc, char **argv);
int cli_log(int argc, char **argv);
int cli_diff(int argc, char **argv);
int cli_rm_version(int argc, char **argv);
int cli_gc(int argc, char **argv);
int cli_fsck(int argc, char **argv);
int cli_meta(int argc, char **argv);
int cli_schema(int argc, char **argv);
int cli_query(int argc, char **argv);
void cli_usage(FILE *f);

#endif
