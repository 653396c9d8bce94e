// SPDX-License-Identifier: MIT
// e2e_cxx: a C++ program whose mapping is made in a namespaced member
// function and a template: its frames must be stored demangled.
#include <sys/mman.h>
#include <cstring>
#include <cstdio>

namespace grow {
struct Pool {
	static char *take(unsigned long n);
};

__attribute__((noinline)) char *Pool::take(unsigned long n)
{
	void *p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return nullptr;
	std::memset(p, 1, n);
	return static_cast<char *>(p);
}

template <typename T> __attribute__((noinline)) T *fill(unsigned long pages)
{
	return reinterpret_cast<T *>(Pool::take(pages * 4096));
}
} // namespace grow

int main()
{
	int *p = grow::fill<int>(64);
	std::printf("%d\n", p ? p[0] & 1 : -1);
	return p ? 0 : 1;
}
