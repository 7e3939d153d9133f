"""Several threads running in-scope code at once."""

import threading


def work(worker_id, results):
    acc = 0
    for i in range(50):
        acc += i * worker_id
    results[worker_id] = acc


def main():
    results = {}
    threads = [threading.Thread(target=work, args=(n, results), name=f"w{n}") for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results.items())


main()
