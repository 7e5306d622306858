# spectral-norm (Benchmarks Game): power method on the infinite matrix A(i, j) =
# 1 / ((i + j)(i + j + 1) / 2 + i + 1), 10 iterations of v = AtA u, u = AtA v.
# Usage: python3 spectral_norm.py N
import math
import sys


def fixed9(x):
    sign = ""
    if x < 0:
        sign = "-"
        x = -x
    v = math.floor(x * 1e9 + 0.5)
    frac = str(v % 1000000000)
    while len(frac) < 9:
        frac = "0" + frac
    return sign + str(v // 1000000000) + "." + frac


def a(i, j):
    ij = i + j
    return 1.0 / (ij * (ij + 1) // 2 + i + 1)


def mul_av(n, v, out):
    for i in range(n):
        s = 0.0
        for j in range(n):
            s = s + a(i, j) * v[j]
        out[i] = s


def mul_atv(n, v, out):
    for i in range(n):
        s = 0.0
        for j in range(n):
            s = s + a(j, i) * v[j]
        out[i] = s


def mul_atav(n, v, out, tmp):
    mul_av(n, v, tmp)
    mul_atv(n, tmp, out)


def main():
    n = int(sys.argv[1])
    u = [1.0] * n
    v = [0.0] * n
    tmp = [0.0] * n
    for _ in range(10):
        mul_atav(n, u, v, tmp)
        mul_atav(n, v, u, tmp)
    vbv = vv = 0.0
    for i in range(n):
        vbv = vbv + u[i] * v[i]
        vv = vv + v[i] * v[i]
    print(fixed9(math.sqrt(vbv / vv)))


main()
