//! evstore's benchmarks live in `benches/` (`cargo bench -p evstore-bench --bench suite`,
//! `--bench core`) and its profiling aids in `examples/`; this library is empty.
