"""Figures across commits, from the store alone: `compare` sets two benches or two perf runs side
by side (`harness compare`), `timeline` follows every figure commit by commit and flags its steps
(`harness history`). `samples` reads the store's runs as timings with their machine and commit,
`machines` says which runs share a machine, `steps` finds the steps (asv's Potts-model segmentation,
confirmed by `stats.compare`), `git` asks the project's repository, `plots` draws a history."""
