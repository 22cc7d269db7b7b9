/*
 * The sandbox ("pause") process of a pod: it holds the pod's namespaces open and,
 * as PID 1 of a pod that shares its process namespace, reaps orphaned children.
 *
 * It sleeps in sigsuspend() until a signal arrives: SIGCHLD reaps every exited child
 * without blocking; SIGINT or SIGTERM ends it with status 0. Written for homestream,
 * built with `musl-gcc -static -Os` so the image needs nothing but this file.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t child_exited;

static void on_signal(int signo) {
  if (signo == SIGCHLD) {
    child_exited = 1;
  } else {
    stop_requested = 1;
  }
}

static void reap_children(void) {
  /* WNOHANG: several children may have exited behind one SIGCHLD; stop when none is left. */
  for (;;) {
    pid_t pid = waitpid(-1, NULL, WNOHANG);
    if (pid > 0) continue;
    if (pid < 0 && errno == EINTR) continue;
    break;
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    puts("homestream-pause");
    return 0;
  }
  if (getpid() != 1) {
    /* Not fatal: a pod without a shared PID namespace starts us as another PID. */
    fputs("homestream-pause: warning: not PID 1, orphans are reaped elsewhere\n", stderr);
  }

  sigset_t handled, waiting;
  sigemptyset(&handled);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGCHLD);
  /* Block the signals outside sigsuspend() so none can arrive between the check of
   * the flags and going to sleep (the lost-wakeup race of pause()). */
  if (sigprocmask(SIG_BLOCK, &handled, &waiting) != 0) {
    perror("homestream-pause: sigprocmask");
    return 1;
  }
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGCHLD);

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) {
    perror("homestream-pause: sigaction");
    return 1;
  }
  action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &action, NULL) != 0) {
    perror("homestream-pause: sigaction");
    return 1;
  }

  while (!stop_requested) {
    sigsuspend(&waiting);
    if (child_exited) {
      child_exited = 0;
      reap_children();
    }
  }
  return 0;
}
