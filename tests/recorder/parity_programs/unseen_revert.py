"""An object changed where the recorder sees it, then changed back where it does not.

For object records (recorder/versions.py): `grow` shows `box` with 9 in it, so the list's table
holds that version of `box`; then `pop`, a C method, takes the 9 out unseen, and the line changes
`outer` beside it. `outer`'s new tree shares its unchanged part (`box`, as first recorded) with its
previous one, and the records filed for that part are no longer the table's: the C core's memo of
filed subtrees (FpFiledMemo in _fingerprint.h) must check them, not trust them, or the reader
shows `box` with the 9 it no longer holds.
"""


def grow(items):
    items.append(9)
    return None


def main():
    inner = [0]
    box = [inner]
    outer = [box]
    grow(box) or box.pop() or outer.append(1)
    done = outer
    return done


main()
