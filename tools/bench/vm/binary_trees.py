# binary-trees (Benchmarks Game): allocate and walk perfect binary trees; a node is a pair of
# children, a leaf has none. Usage: python3 binary_trees.py N   (maximum depth N)
import sys


def make(d):
    if d == 0:
        return (None, None)
    return (make(d - 1), make(d - 1))


def check(t):
    l = t[0]
    if l is None:
        return 1
    return 1 + check(l) + check(t[1])


def main():
    max_depth = max(6, int(sys.argv[1]))
    stretch = max_depth + 1
    print(f"stretch tree of depth {stretch}\t check: {check(make(stretch))}")
    long_lived = make(max_depth)
    for d in range(4, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + 4)
        total = 0
        for _ in range(iterations):
            total += check(make(d))
        print(f"{iterations}\t trees of depth {d}\t check: {total}")
    print(f"long lived tree of depth {max_depth}\t check: {check(long_lived)}")


main()
