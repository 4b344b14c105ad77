"""Python Celery side of `pnpm bench`: the worker's tasks, and a client that enqueues or round-trips."""
import json
import os
import sys
import time

from celery import Celery

app = Celery('celery_bench', broker=os.environ['CELERY_BROKER_URL'], backend=os.environ.get('CELERY_RESULT_BACKEND', os.environ['CELERY_BROKER_URL']))
app.conf.update(accept_content=['json'], worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name='bench.noop', ignore_result=True)
def noop():
    return None


@app.task(name='bench.echo')
def echo(x):
    return x


if __name__ == '__main__':
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == 'enqueue':
        queue = sys.argv[3]
        start = time.perf_counter()
        for _ in range(n):
            app.send_task('bench.noop', queue=queue)
        print(json.dumps({'seconds': time.perf_counter() - start}))
    elif mode == 'roundtrip':
        lat = []
        for i in range(n):
            t = time.perf_counter()
            app.send_task('bench.echo', args=(i,)).get(timeout=30)
            lat.append((time.perf_counter() - t) * 1000)
        print(json.dumps({'latencies': lat}))
