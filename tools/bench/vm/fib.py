# fib: naive doubly recursive Fibonacci (call overhead). Usage: python3 fib.py N
import sys


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


print(fib(int(sys.argv[1])))
