# Convenience wrapper; the scripts are the source of truth (they also install missing Debian packages as root).
.PHONY: all demo check test clean
all:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j$$(nproc)
demo:
	sh scripts/demo.sh
check test:
	sh scripts/test.sh
clean:
	rm -rf build build-asan
