"""The embedding kind: integer token ids [time] -> one learned row each, [time, dim]."""

from __future__ import annotations

from harness.layers.base import Key, Kind, ShapeError


class Embedding(Kind):
    """y[t] = weight[ids[t]], as torch.nn.Embedding: weight (vocab, dim), drawn from N(0, 1) as
    torch draws it. Its input is the network's input, a sequence of token ids in [0, vocab)
    (`input_shape = [time]`); they travel as the network's float dtype and are read as integers."""

    name = "embedding"
    keys = {"vocab": Key("int"), "dim": Key("int")}
    takes_ids = True

    @classmethod
    def out_shape(cls, s, in_shape):
        if len(in_shape) != 1:
            raise ShapeError(f"embedding takes a sequence of token ids [time], but its input has shape "
                             f"{list(in_shape)}; give the network input_shape = [time]")
        return (in_shape[0], s.get("dim"))

    @classmethod
    def param_shapes(cls, s, in_shape):
        return {"weight": (s.get("vocab"), s.get("dim"))}

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        return {"weight": rng.normal(0.0, 1.0, cls.param_shapes(s, in_shape)["weight"])}

    @classmethod
    def flops(cls, s, in_shape):
        return 0  # a lookup: rows copied, nothing multiplied


def token_ids(x, vocab: int):
    """The integer ids an embedding of `vocab` rows reads from `x` (ids in the network's float dtype,
    or integers), as int64; a DataError naming the first that is not an integer in [0, vocab)."""
    import numpy as np

    from harness.errors import DataError

    x = np.asarray(x)
    with np.errstate(invalid="ignore"):  # NaN and infinity cast to garbage, which the test below catches
        ids = x.astype(np.int64)
        bad = (ids != x) | (ids < 0) | (ids >= vocab)
    if bad.any():
        first = np.argwhere(bad)[0]
        where = f"sample {first[0]}" + (f", step {first[1]}" if len(first) > 1 else "")
        raise DataError(f"token id {x[tuple(first)].item()!r} ({where}) is not an integer from 0 to {vocab - 1}: "
                        f"the embedding has vocab = {vocab}")
    return ids
