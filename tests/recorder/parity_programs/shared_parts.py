"""Objects met through several names at several depths in the same line, changed in place: the
C core shares a part's walk and its venc between the values of one callback and across depths
(replay/recorder/_fingerprint.c, the log of parts and the part memo), which must read exactly
what walking each value alone reads. The depth limit (4) cuts some of the places a part is met
(an empty list and a secret (name, value) pair at the limit), and a callee changes a shared
part between two lines. In `cut_then_whole` a line walks the value that holds a part deep down
(cut there) before the part's own name, which must not take the cut walk for its own."""


def make_bodies():
    return [([float(i), 0.0, 0.0], [0.0, float(i), 0.0], float(i + 1)) for i in range(3)]


def pairs_of(items):
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]


def nudge(body, by):
    body[1][0] += by


def main():
    bodies = make_bodies()
    pairs = pairs_of(bodies)
    empty = []
    creds = [("password", "hunter2"), ("user", "ann")]
    deep = [[[bodies[0], empty, creds]]]
    deeper = [[[[bodies[1], empty]]]]
    for step in range(3):
        for (p1, v1, m1), (_, v2, m2) in pairs:
            v1[0] -= 0.5 * m2
            v2[1] += 0.25 * m1
            p1[2] = p1[2] + v1[0]
        nudge(bodies[step], 1.0)
        empty.append(step)
        creds[1] = ("user", step)
        empty.clear()
    creds.append(("token", "t"))
    bodies[0][1].append(9.0)
    del bodies[0][1][-1]
    return deep, deeper


def cut_then_whole():
    keeper = [[None]]
    nested = [[[1]]]
    holder = [[nested]]
    pair = ["password", "hunter2"]
    secrets = [[pair]]
    keeper[0][0] = secrets
    for i in range(4):
        holder[0][0][0][0].append(i)
        keeper[0][0][0][0][0] = "token" if i % 2 == 0 else "password"
    return holder, keeper


main()
cut_then_whole()
