"""A secret-looking (name, value) pair inside a part that one line's check meets at two depths:
first through its own name (the pair walked: its name shown, its value hidden), then at the
depth limit inside another value, where the encoder cuts the pair. The C core's part memo must
not let the first walk stand for the second (replay/recorder/_fingerprint.c, walk_part: a part
holding a secret pair is fit only for its own depth), or the deep value would show the pair
where the encoder shows a cut. The bodies keep the memo in use (it turns itself off where
copies are rare)."""


def make_bodies():
    return [([float(i), 0.0, 0.0], [0.0, float(i), 0.0], float(i + 1)) for i in range(3)]


def main():
    bodies = make_bodies()
    pairs = [(bodies[i], bodies[j]) for i in range(3) for j in range(i + 1, 3)]
    creds = [[("password", "hunter2")]]
    deep = [[creds]]
    for step in range(6):
        for (_, v1, m1), (_, v2, m2) in pairs:
            v1[0] -= 0.5 * m2
            v2[1] += 0.25 * m1
        creds.append(step)
    return deep


main()
