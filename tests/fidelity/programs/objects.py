"""Class methods, properties, inheritance, slots and objects mutated through aliases."""


class Base:
    created = 0

    def __init__(self, name):
        self.name = name
        self.tags = []
        Base.created += 1

    @classmethod
    def make(cls, name):
        return cls(name)

    @staticmethod
    def normalise(text):
        return text.strip().lower()

    @property
    def label(self):
        return f"<{self.name}>"


class Child(Base):
    def __init__(self, name, level):
        super().__init__(name)
        self.level = level

    def tag(self, *tags, **extra):
        for tag in tags:
            self.tags.append(self.normalise(tag))
        self.extra = extra
        return len(self.tags)


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y


def mutate(target):
    target.append("from-callee")


def main():
    made = Base.make("root")
    child = Child("node", 2)
    alias = child
    count = alias.tag(" A ", "b", colour="red")
    label = child.label
    point = Point(1, 2)
    point.x = 10
    shared = [1]
    other = shared
    mutate(other)
    grid = [[0] * 3 for _ in range(2)]
    grid[1][2] = 5
    return made.name, count, label, point.x, shared, grid


main()
