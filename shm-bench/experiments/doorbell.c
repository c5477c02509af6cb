// Doorbell experiment (issue 11): the cost of a round trip of two processes that always block,
// waking each other through a futex (what shm's `block` does) or through a doorbell file
// descriptor: a pipe, a Unix datagram or stream socketpair, an eventfd, a FIFO. The protocol is
// Signal's: the waiter announces that it sleeps in a second word, checks the value, and sleeps
// (futex wait, or a read of one byte); the writer stores the value and rings (futex wake, or a
// non-blocking write of one byte) only when the peer announced it sleeps. Cases are interleaved,
// REPS times ROUNDS round trips each; it prints, per case, the median and the mean of the
// repetitions' means, and the least and most.
//
//   cc -O2 -o /tmp/doorbell shm-bench/experiments/doorbell.c && /tmp/doorbell 20 2000
//
// Not built with the workspace: `shm bench` measures the pipe doorbell itself (posix_block_bell).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <string.h>

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static void fwait(_Atomic uint32_t*w,uint32_t v){syscall(SYS_futex,w,FUTEX_WAIT,v,0,0,0);}
static void fwake(_Atomic uint32_t*w){syscall(SYS_futex,w,FUTEX_WAKE,1,0,0,0);}

enum {FUTEX, PIPE, DGRAM, STREAM, EVENTFD, FIFO, NCASE};
static const char*names[]={"futex","pipe","unix_dgram","unix_stream","eventfd","fifo"};

static void waitfor(int c,_Atomic uint32_t*w,_Atomic uint32_t*sl,uint32_t want,int fd){
  atomic_store(sl,1);
  for(;;){uint32_t v=atomic_load(w); if(v==want)break;
    if(c==FUTEX)fwait(w,v); else {uint64_t x; read(fd,&x,c==EVENTFD?8:1);} }
  atomic_store(sl,0);
}
static void ring(int c,_Atomic uint32_t*w,_Atomic uint32_t*sl,uint32_t v,int fd){
  atomic_store(w,v);
  if(atomic_load(sl)){ if(c==FUTEX)fwake(w); else {uint64_t one=1; if(c==DGRAM||c==STREAM) send(fd,&one,1,MSG_DONTWAIT); else write(fd,&one,c==EVENTFD?8:1);} }
}
// fds[0]: parent->child read end in child, fds[1]: parent write; fds[2]: child->parent read in parent, fds[3]: child write
static double run(int c,int rounds){
  _Atomic uint32_t*w=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
  w[0]=0;w[16]=0;
  int a[2],b[2];
  char fa[64],fb[64];
  if(c==PIPE){pipe(a);pipe(b);fcntl(a[1],F_SETFL,O_NONBLOCK);fcntl(b[1],F_SETFL,O_NONBLOCK);}
  else if(c==DGRAM){socketpair(AF_UNIX,SOCK_DGRAM,0,a);b[0]=a[1];b[1]=a[0];}
  else if(c==STREAM){socketpair(AF_UNIX,SOCK_STREAM,0,a);b[0]=a[1];b[1]=a[0];}
  else if(c==EVENTFD){a[0]=a[1]=eventfd(0,0);b[0]=b[1]=eventfd(0,0);}
  else if(c==FIFO){sprintf(fa,"/tmp/doorbell-fa-%d",getpid());sprintf(fb,"/tmp/doorbell-fb-%d",getpid());unlink(fa);unlink(fb);mkfifo(fa,0600);mkfifo(fb,0600);
    a[0]=open(fa,O_RDWR);a[1]=open(fa,O_RDWR);b[0]=open(fb,O_RDWR);b[1]=open(fb,O_RDWR|O_NONBLOCK);fcntl(a[1],F_SETFL,O_NONBLOCK);}
  // doorbell protocol: store value, then ring; waiter: wait for ring, then check value
  pid_t p=fork();
  if(p==0){
    for(uint32_t i=0;i<(uint32_t)rounds;i++){
      uint32_t want=2*i+1;
      waitfor(c,&w[0],&w[1],want,a[0]);
      ring(c,&w[16],&w[17],want+1,b[1]);
    }
    _exit(0);
  }
  double t0=now();
  for(uint32_t i=0;i<(uint32_t)rounds;i++){
    uint32_t v=2*i+1;
    ring(c,&w[0],&w[1],v,a[1]);
    waitfor(c,&w[16],&w[17],v+1,b[0]);
  }
  double t=(now()-t0)/rounds;
  waitpid(p,0,0);
  if(c==PIPE){close(a[0]);close(a[1]);close(b[0]);close(b[1]);}
  else if(c==DGRAM||c==STREAM){close(a[0]);close(a[1]);}
  else if(c==EVENTFD){close(a[0]);close(b[0]);}
  else if(c==FIFO){close(a[0]);close(a[1]);close(b[0]);close(b[1]);unlink(fa);unlink(fb);}
  munmap((void*)w,4096);
  return t;
}
static int cmp(const void*x,const void*y){double a=*(double*)x,b=*(double*)y;return a<b?-1:a>b;}
int main(int argc,char**argv){
  int reps=argc>1?atoi(argv[1]):15, rounds=argc>2?atoi(argv[2]):3000;
  double r[NCASE][200];
  for(int k=0;k<reps;k++)for(int c=0;c<NCASE;c++)r[c][k]=run(c,rounds);
  printf("%d reps x %d rounds, mean ns per round trip per rep: median [min..max]\n",reps,rounds);
  for(int c=0;c<NCASE;c++){qsort(r[c],reps,sizeof(double),cmp);double s=0;for(int k=0;k<reps;k++)s+=r[c][k];
    printf("  %-12s %8.0f  mean-of-reps %8.0f [%6.0f .. %6.0f]\n",names[c],r[c][reps/2],s/reps,r[c][0],r[c][reps-1]);}
}
