/*
 * main.c - the voice-ws command line: serve, action, actions, db init, health.
 *
 * Owns: argument parsing and exit codes. Everything else is wired in
 * core/app.c. Output contract: stdout carries only JSON (envelope, tool
 * list, health); every log line goes to stderr.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: voice-ws serve [--provider openai|gemini|auto] [--port N]\n"
          "       voice-ws action NAME 'JSON' [--caller +44...] [--call-sid ID]\n"
          "       voice-ws actions\n"
          "       voice-ws db init [--demo]\n"
          "       voice-ws health\n"
          "       voice-ws link verify TOKEN\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "voice-ws: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
