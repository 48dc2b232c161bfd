//! flinksim's simulator: runs a scenario of the Flink operations playground from a seed.
