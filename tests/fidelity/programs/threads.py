"""Several threads running in-scope code at once.

The workers' results go to a module global, not to a local of main(): two runs (the oracle's and
replay's) interleave the threads differently, so what main's frame holds while workers run must
not depend on that timing. Thread objects change themselves as their thread starts and ends;
the fidelity test leaves those internals out of the comparison.
"""

import threading

RESULTS = {}


def work(worker_id):
    acc = 0
    for i in range(50):
        acc += i * worker_id
    RESULTS[worker_id] = acc


def main():
    threads = [threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(RESULTS.items())


main()
