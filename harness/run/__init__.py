"""One experiment, trained and measured: its inputs prepared (`prepare`), a run on one engine
(`runner`), in a fresh process (`isolation`, watched by `monitor`), every experiment on both
engines into the tracking store (`bench`, locally or on Ray through `distributed`), and the two
engines in lockstep (`parity`), and a saved model tested on a dataset (`evaluate`, through onnxruntime)."""
