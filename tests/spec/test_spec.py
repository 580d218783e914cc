import pytest

from harness import spec
from harness.errors import HarnessError, SpecError

XOR = """
name = "xor"
[data]
dataset = "xor"
[network]
inputs = 2
hidden = [{ units = 4, activation = "tanh" }]
outputs = 1
output_activation = "sigmoid"
[training]
loss = "bce"
optimizer = { name = "sgd", learning_rate = 0.5 }
epochs = 200
batch_size = 4
dtype = "float64"
"""


@pytest.fixture
def xor_file(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    return path


def test_a_valid_file_loads_with_defaults(xor_file):
    s = spec.load(xor_file)
    assert s.network.sizes == [2, 4, 1]
    assert [a.name for a in s.network.activations] == ["tanh", "sigmoid"]
    assert s.training.optimizer.kwargs() == {"learning_rate": 0.5, "momentum": 0.0, "dampening": 0.0,
                                             "nesterov": False, "weight_decay": 0.0}
    assert s.network.init == "xavier_uniform"
    assert s.bench.seeds == (0, 1, 2) and s.bench.engines == ("scratch", "torch")
    assert s.evaluation.metric == "accuracy"


def test_specs_are_frozen(xor_file):
    s = spec.load(xor_file)
    with pytest.raises(AttributeError):
        s.training.epochs = 3


def test_to_dict_round_trips(xor_file):
    s = spec.load(xor_file, ["network.hidden.0.activation.name=leaky_relu",
                             "network.hidden.0.activation.slope=0.2", "training.optimizer.name=adam"])
    assert spec.from_dict(s.to_dict()) == s
    assert s.flat()["network.hidden"] == '[{"units":4,"activation":{"name":"leaky_relu","slope":0.2}}]'


def test_any_number_of_hidden_layers_each_with_its_own_activation(xor_file):
    s = spec.load(xor_file, ['network.hidden=[{units=8, activation="relu"}, {units=6, activation="gelu"},'
                             ' {units=5, activation={name="elu", alpha=0.5}}, {units=3, activation="softplus"}]'])
    assert s.network.sizes == [2, 8, 6, 5, 3, 1]
    assert [a.name for a in s.network.activations] == ["relu", "gelu", "elu", "softplus", "sigmoid"]
    assert s.network.hidden[2].activation.kwargs() == {"alpha": 0.5}


def test_overrides_are_typed(xor_file):
    s = spec.load(xor_file, ["training.epochs=3", "training.optimizer.learning_rate=1", "data.dataset=xor",
                             "bench.seeds=[4]", "training.shuffle=false"])
    assert s.training.epochs == 3 and isinstance(s.training.optimizer.learning_rate, float)
    assert s.bench.seeds == (4,) and s.training.shuffle is False


# (overrides, pattern of the one-line message): every mistake names the key, the value and what is allowed
MISTAKES = [
    (["training.epochs=0"], r"training.epochs = 0: must be an integer from 1 to"),
    (["training.epochs=2.5"], r"training.epochs = 2.5: must be an integer"),
    (["training.epochs=many"], r"training.epochs = 'many': must be an integer"),
    (["training.batch_size=0"], r"training.batch_size = 0: must be an integer from 1 to"),
    (["training.batch_size=true"], r"training.batch_size = True: must be an integer"),
    (["training.optimizer.learning_rate=0"], r"learning_rate = 0.0: must be > 0"),
    (["training.optimizer.learning_rate=-0.1"], r"learning_rate = -0.1: must be > 0"),
    (["training.optimizer.momentum=1.5"], r"momentum = 1.5: must be in \[0, 1\)"),
    (["training.optimizer.nesterov=true"], r"nesterov = true needs momentum > 0"),
    (["training.optimizer.name=rmsprop"], r"unknown optimizer 'rmsprop'.*known: adam, adamw, sgd"),
    (["training.optimizer={name='adam', momentum=0.9}"], r"'training.optimizer.momentum'.*adam' takes betas"),
    (["training.optimizer={name='adam', betas=[0.9]}"], r"betas = \[0.9\]: must be two numbers in \[0, 1\)"),
    (["training.loss=hinge"], r"unknown loss 'hinge'.*known: bce, cross_entropy, mse"),
    (["training.loss=cross_entropy"], r"'cross_entropy' needs network.output_activation = 'softmax', got 'sigmoid'"),
    (["network.output_activation=tanh"], r"training.loss = 'bce' needs network.output_activation = 'sigmoid'"),
    (["training.dtype=float16"], r"training.dtype = 'float16': allowed: float32, float64"),
    (["training.epoch=3"], r"unknown key 'training.epoch' \(did you mean \"training.epochs\"\?\)"),
    (["trainin.epochs=3"], r"unknown key 'trainin' \(did you mean \"training\"\?\)"),
    (["network.inputs=0"], r"network.inputs = 0: must be an integer from 1 to"),
    (["network.outputs=-2"], r"network.outputs = -2: must be an integer from 1 to"),
    (["network.hidden.0.units=0"], r"network.hidden.0.units = 0: must be an integer from 1 to"),
    (["network.hidden.0.units=-3"], r"network.hidden.0.units = -3: must be an integer from 1 to"),
    (["network.hidden.0.activation=swish"], r"unknown activation 'swish'.*known: elu, gelu"),
    (["network.hidden.0.activation=softmax"], r"'softmax': softmax is for the output layer only"),
    (["network.hidden.0.activation.alpha=2"], r"'tanh' takes no parameters"),
    (["network.hidden.0.activation={name='elu', alpha=0}"], r"alpha = 0.0: must be > 0"),
    (["network.hidden=[{units=3}]"], r"network.hidden.0.activation is missing: add a \[network.hidden.0.activation\]"),
    (["network.hidden=[{units=3, activation='relu', dropout=0.5}]"], r"unknown key 'network.hidden.0.dropout'"),
    (["network.hidden=3"], r"network.hidden = 3: must be a list"),
    (["network.init=glorot"], r"unknown initializer 'glorot'.*known: he_normal"),
    (["network.output_activation=softmax", "training.loss=cross_entropy"],
     r"'softmax' needs outputs >= 2, got outputs = 1"),
    (["data.dataset=cifar10"], r"unknown dataset 'cifar10'"),
    (["data.validation=1.0"], r"data.validation = 1.0: must be in \[0, 1\)"),
    (["evaluation.metric=f1"], r"unknown metric 'f1'.*known: accuracy"),
    (["bench.engines=['jax']"], r"bench.engines.0: unknown engine 'jax'.*known: scratch, torch"),
    (["bench.seeds=[]"], r"bench.seeds = \[\]: must list at least one seed"),
    (["bench.seeds=[1, 1]"], r"bench.seeds = \[1, 1\]: must not repeat a seed"),
    (["training.threads=-1"], r"training.threads = -1: must be between 0 \(every core\) and \d+"),
    (["network=3"], r"network = 3: must be a table"),
    (["noequals"], r"--set 'noequals': expected KEY=VALUE"),
    (["=3"], r"expected KEY=VALUE"),
    (["training..epochs=3"], r"expected KEY=VALUE"),
    (["network.hidden.5.units=3"], r"network.hidden has 1 entries, numbered from 0"),
    (["training.epochs.max=3"], r"training.epochs is a value, not a table"),
]


@pytest.mark.parametrize("overrides,pattern", MISTAKES, ids=[m[0][0] for m in MISTAKES])
def test_each_mistake_gets_one_clear_line(xor_file, overrides, pattern):
    with pytest.raises(SpecError, match=pattern) as info:
        spec.load(xor_file, overrides)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, HarnessError)


def test_file_level_mistakes(tmp_path):
    with pytest.raises(SpecError, match="experiment file not found"):
        spec.load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[network\ninputs = 2")
    with pytest.raises(SpecError, match=r"bad.toml: not valid TOML"):
        spec.load(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing here\n")
    with pytest.raises(SpecError, match=r"the file is empty"):
        spec.load(empty)
    partial = tmp_path / "partial.toml"
    partial.write_text('[data]\ndataset = "xor"\n')
    with pytest.raises(SpecError, match=r"network is missing: add a \[network\] table"):
        spec.load(partial)
    nonutf = tmp_path / "binary.toml"
    nonutf.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="cannot be read"):
        spec.load(nonutf)


def test_missing_required_keys_are_named(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(XOR.replace('loss = "bce"\n', ""))
    with pytest.raises(SpecError, match="training.loss is missing; known: bce, cross_entropy, mse"):
        spec.load(path)


def test_the_message_names_the_file(xor_file):
    with pytest.raises(SpecError, match=r"^.*xor.toml: training.epochs = 0"):
        spec.load(xor_file, ["training.epochs=0"])


def test_network_spec_alone_round_trips():
    raw = {"inputs": 3, "outputs": 2, "output_activation": "softmax",
           "hidden": [{"units": 4, "activation": {"name": "leaky_relu", "slope": 0.3}}]}
    ns = spec.network_from_dict(raw)
    assert spec.network_from_dict(spec.network_to_dict(ns)) == ns
