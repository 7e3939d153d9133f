"""Several threads running the same functions at once, joined by the main thread."""

import threading

lock = threading.Lock()
barrier = threading.Barrier(4)
shared = []


def work(tag, n):
    acc = 0
    for i in range(n):
        acc += i * tag
        if i % 7 == 0:
            with lock:
                shared.append((tag, i))
    return acc


def worker(tag):
    barrier.wait()
    result = work(tag, 150)
    total = result + tag
    return total


def main():
    threads = [threading.Thread(target=worker, args=(t,)) for t in (1, 2, 3)]
    for t in threads:
        t.start()
    barrier.wait()
    local = work(9, 150)
    for t in threads:
        t.join()
    return local, len(shared)


main()
