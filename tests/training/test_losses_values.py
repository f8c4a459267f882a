"""Loss specs and compiled losses pinned by value and by message (issue 17, mutation testing).

Every message of ``mml/training/_losses.py`` is checked in full; compiled backend classes and
user functions are compared with hand-computed numbers (weights and masks included).
"""

from __future__ import annotations

import pytest

import mml
from mml.training._losses import (
    LOSSES,
    AppliedLoss,
    InputSpec,
    Loss,
    check_loss_backend,
    compile_loss,
    parse_input,
)

torch = pytest.importorskip("torch")

HERE = __name__
ALL = "mse, mae, huber, bce, bce_with_logits, cross_entropy, triplet_margin, contrastive"


# -- module-level losses named by import path in the tests below ----------------------------


def per_sample_abs(outputs, targets, scale=1.0):
    return abs(outputs - targets)[:, 0] * scale  # torch or TensorFlow tensors


def scalar_sum(outputs, targets):
    return (outputs - targets).sum()


def returns_a_float(outputs, targets):
    return 1.5


a_lambda = lambda outputs, targets: (outputs - targets).sum()  # noqa: E731


class NoReduction:
    """A loss class without a ``reduction`` argument (TypeError when given one)."""

    def __init__(self, power: float = 1.0) -> None:
        self.power = power

    def __call__(self, outputs, targets):
        return (outputs - targets).abs().reshape(-1) ** self.power


class RefusesNone:
    """A loss class that refuses ``reduction="none"`` with a ValueError."""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction != "mean":
            raise ValueError("only mean")

    def __call__(self, outputs, targets):
        return (outputs - targets).abs().reshape(-1)


class GivesAFloat:
    def __call__(self, outputs, targets):
        return 2.0


class Holder:
    @staticmethod
    def loss(outputs, targets):
        return (outputs - targets).sum()


OUT = torch.tensor([[1.0], [3.0], [0.0]])
TGT = torch.tensor([[2.0], [5.0], [4.0]])  # |o - t| = 1, 2, 4
W = torch.tensor([1.0, 0.0, 3.0])
M = torch.tensor([True, True, False])


# -- Loss --------------------------------------------------------------------------------


def test_builtin_names_are_the_eight_losses():
    assert LOSSES == (
        "mse",
        "mae",
        "huber",
        "bce",
        "bce_with_logits",
        "cross_entropy",
        "triplet_margin",
        "contrastive",
    )
    for name in LOSSES:
        loss = Loss(name)
        assert loss.name == name and loss.backend is None


def test_a_loss_that_is_not_a_string_says_what_to_do():
    with pytest.raises(mml.ConfigError) as info:
        Loss(3)
    assert str(info.value) == (
        f"Loss takes a name ({ALL}) or an import path 'module:name', got 3; "
        "lambdas and function objects cannot be saved — define the function in a module and name it"
    )


def test_unknown_loss_names_with_and_without_a_close_match():
    with pytest.raises(mml.ConfigError) as info:
        Loss("msee")
    assert str(info.value) == (
        f"unknown loss 'msee' (did you mean 'mse'?); use one of {ALL} or an import path such as "
        "'torch.nn:SmoothL1Loss'"
    )
    with pytest.raises(mml.ConfigError) as info:
        Loss("zzzzqq")
    assert str(info.value) == (
        f"unknown loss 'zzzzqq'; use one of {ALL} or an import path such as 'torch.nn:SmoothL1Loss'"
    )


def test_import_paths_must_be_callable_functions_not_lambdas():
    with pytest.raises(mml.ConfigError) as info:
        Loss("math:pi")
    assert str(info.value) == "loss 'math:pi' is not callable"
    with pytest.raises(mml.ConfigError) as info:
        Loss(f"{HERE}:a_lambda")
    assert str(info.value) == (
        f"'{HERE}:a_lambda' is a lambda; name a module-level function instead (lambdas cannot be saved)"
    )
    assert Loss(f"{HERE}:per_sample_abs").fn == f"{HERE}:per_sample_abs"


def test_kwargs_must_be_plain_data():
    with pytest.raises(mml.ConfigError) as info:
        Loss("mse", {"a": object})
    assert str(info.value) == "loss kwarg a=<class 'object'> is not plain data (numbers, strings, lists)"
    kw = {"b": True, "i": 1, "f": 0.5, "s": "x", "n": None, "t": (1, 2), "l": [1]}
    assert dict(Loss("huber", kw).kwargs) == kw
    assert dict(Loss("mse").kwargs) == {}


def test_name_backend_and_arity_of_loss_paths():
    assert Loss("torch.nn:SmoothL1Loss").name == "SmoothL1Loss"
    assert Loss(f"{HERE}:Holder.loss").name == "loss"
    assert Loss("torch.nn:SmoothL1Loss").backend == "torch"
    assert Loss("torch:abs").backend == "torch"
    assert Loss("keras.losses:Huber").backend == "tensorflow"
    assert Loss("tensorflow.keras.losses:Huber").backend == "tensorflow"
    assert Loss(f"{HERE}:per_sample_abs").backend is None
    assert Loss(f"{HERE}:per_sample_abs").n_inputs is None
    assert Loss("torch.nn:SmoothL1Loss").n_inputs is None


def test_arity_of_builtins():
    assert [Loss(n).n_inputs for n in LOSSES] == [2, 2, 2, 2, 2, 2, 3, 3]
    assert Loss("contrastive", {"similar": True}).n_inputs == 2
    assert Loss("contrastive", {"similar": False}).n_inputs == 2
    assert Loss("mse", {"similar": True}).n_inputs == 2
    assert Loss("triplet_margin", {"similar": True}).n_inputs == 3


# -- inputs --------------------------------------------------------------------------------


def test_parse_input_values():
    assert parse_input("outputs") == InputSpec(None, "outputs", None)
    for source in ("outputs", "targets", "features", "weights", "mask"):
        assert parse_input(source) == InputSpec(None, source, None)
        assert parse_input(f"anchor.{source}") == InputSpec("anchor", source, None)
    assert parse_input("tags.similar") == InputSpec(None, "tags", "similar")
    assert parse_input("pair.tags.same") == InputSpec("pair", "tags", "same")
    assert InputSpec("r", "outputs").key is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a loss input is a string such as 'outputs', 'targets' or 'anchor.outputs', got ''"),
        (3, "a loss input is a string such as 'outputs', 'targets' or 'anchor.outputs', got 3"),
        ("tags", "loss input 'tags': a tag input is 'tags.<key>'"),
        ("tags.a.b", "loss input 'tags.a.b': a tag input is 'tags.<key>'"),
        ("anchor.tags", "loss input 'anchor.tags': a tag input is 'tags.<key>'"),
        ("outputs.x", "loss input 'outputs.x' has extra parts after 'outputs'"),
        ("anchor.targets.y", "loss input 'anchor.targets.y' has extra parts after 'targets'"),
        (
            "a.b",
            "loss input 'a.b': use [role.]outputs, targets, features, weights, mask or tags.<key> "
            "(e.g. 'outputs', 'targets', 'anchor.outputs', 'tags.similar')",
        ),
        (
            "anchor",
            "loss input 'anchor': use [role.]outputs, targets, features, weights, mask or tags.<key> "
            "(e.g. 'outputs', 'targets', 'anchor.outputs', 'tags.similar')",
        ),
    ],
)
def test_parse_input_messages(text, message):
    with pytest.raises(mml.ConfigError) as info:
        parse_input(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("fn", "inputs", "message"),
    [
        (
            "mse",
            ("outputs",),
            "loss 'mse' takes 2 inputs, got 1 (outputs); e.g. inputs=('outputs', 'targets')",
        ),
        (
            "triplet_margin",
            ("outputs", "targets"),
            "loss 'triplet_margin' takes 3 inputs, got 2 (outputs, targets); e.g. "
            "inputs=('anchor.outputs', 'positive.outputs', 'negative.outputs')",
        ),
        (
            "contrastive",
            ("outputs", "targets"),
            "loss 'contrastive' takes 3 inputs, got 2 (outputs, targets); e.g. "
            "inputs=('anchor.outputs', 'pair.outputs', 'pair.tags.same') or Loss('contrastive', "
            "{'similar': True}) with inputs=('anchor.outputs', 'pair.outputs')",
        ),
    ],
)
def test_arity_messages(fn, inputs, message):
    with pytest.raises(mml.ConfigError) as info:
        AppliedLoss(fn, "m", inputs=inputs)
    assert str(info.value) == message


def test_applied_loss_defaults_names_and_roles():
    a = AppliedLoss("mae", "head")
    assert a.loss == Loss("mae") and a.inputs == ("outputs", "targets") and a.weight == 1.0
    assert a.label is None and a.name == "head.mae"
    assert a.roles == ("default",)
    assert a.specs == (InputSpec(None, "outputs"), InputSpec(None, "targets"))
    assert AppliedLoss("mae", "head", label="L").name == "L"
    assert AppliedLoss("torch.nn:L1Loss", "h").name == "h.L1Loss"
    mixed = AppliedLoss("mse", "h", inputs=("outputs", "pair.targets"))
    assert mixed.roles == ("default", "pair")
    same = AppliedLoss("mse", "h", inputs=("p.outputs", "p.targets"))
    assert same.roles == ("p",)
    one = AppliedLoss(f"{HERE}:per_sample_abs", "h", inputs="outputs")
    assert one.inputs == ("outputs",)  # a string is one input; a path loss takes any number


def test_applied_loss_from_a_mapping():
    a = AppliedLoss({"fn": "huber", "kwargs": {"delta": 2.0}}, "h")
    assert a.loss == Loss("huber", {"delta": 2.0})
    assert AppliedLoss({"fn": "mae"}, "h").loss == Loss("mae")


def test_weights_are_numbers_at_least_zero():
    assert AppliedLoss("mse", "m", weight=0).weight == 0.0
    assert AppliedLoss("mse", "m", weight=0.25).weight == 0.25
    assert AppliedLoss("mse", "m", weight="2").weight == 2.0
    for bad, shown in ((float("nan"), "nan"), (-1, "-1.0"), (-1e-9, "-1e-09")):
        with pytest.raises(mml.ConfigError) as info:
            AppliedLoss("mse", "m", weight=bad)
        assert str(info.value) == f"AppliedLoss weight must be a number >= 0, got {shown}"


# -- compiled losses -------------------------------------------------------------------------


def test_compile_loss_refuses_unknown_backends():
    with pytest.raises(mml.ConfigError) as info:
        compile_loss(Loss("mse"), "jax")
    assert str(info.value) == "compile_loss: backend must be one of torch, tensorflow, got 'jax'"


def test_a_torch_loss_class_is_built_per_sample_and_honours_weights_and_masks():
    fn = compile_loss(Loss("torch.nn:L1Loss"))
    assert float(fn([OUT, TGT], None, None)) == pytest.approx(7 / 3)
    assert float(fn([OUT, TGT], W, None)) == pytest.approx((1 + 12) / 4)
    assert float(fn([OUT, TGT], None, M)) == pytest.approx(1.5)
    assert float(fn([OUT, TGT], W, M)) == pytest.approx(1.0)
    # a class returning a scalar is taken as it is (the torch default reduction is a sum here)
    total = compile_loss(Loss("torch.nn:L1Loss", {"reduction": "sum"}))
    assert float(total([OUT, TGT], W, None)) == pytest.approx((1 + 12) / 4)  # 'none' wins over kwargs


def test_classes_without_a_reduction_argument():
    fn = compile_loss(Loss(f"{HERE}:NoReduction", {"power": 2.0}))
    assert float(fn([OUT, TGT], None, None)) == pytest.approx(21 / 3)
    assert float(fn([OUT, TGT], W, None)) == pytest.approx((1 + 48) / 4)
    refuses = compile_loss(Loss(f"{HERE}:RefusesNone"))
    assert float(refuses([OUT, TGT], None, M)) == pytest.approx(1.5)
    with pytest.raises(mml.ConfigError) as info:
        compile_loss(Loss(f"{HERE}:NoReduction", {"bogus": 1}))
    assert str(info.value) == (
        f"{HERE}:NoReduction does not accept kwargs {{'bogus': 1}}: "
        "NoReduction.__init__() got an unexpected keyword argument 'bogus'"
    )


def test_a_class_returning_no_tensor_is_a_training_error():
    fn = compile_loss(Loss(f"{HERE}:GivesAFloat"))
    with pytest.raises(mml.TrainingError) as info:
        fn([OUT, TGT], None, None)
    assert str(info.value) == "a loss returned a float, not a tensor"


def test_a_keras_loss_class_gets_targets_first():
    tf = pytest.importorskip("tensorflow")
    fn = compile_loss(Loss("keras.losses:MeanAbsolutePercentageError"), "tensorflow")
    o = tf.constant([[1.0], [3.0]])
    t = tf.constant([[2.0], [4.0]])
    # 100 * mean(|t - o| / |t|) = 100 * (1/2 + 1/4) / 2; swapped it would be 100 * (1 + 1/3) / 2
    assert float(fn([o, t], None, None)) == pytest.approx(37.5, rel=1e-6)
    assert float(fn([o, t], tf.constant([1.0, 0.0]), None)) == pytest.approx(50.0, rel=1e-6)
    assert float(fn([o, t], None, tf.constant([False, True]))) == pytest.approx(25.0, rel=1e-6)


def test_a_torch_class_keeps_the_order_of_its_inputs():
    fn = compile_loss(Loss("torch.nn:BCELoss"))
    p = torch.tensor([[0.25], [0.5]])
    y = torch.tensor([[1.0], [0.0]])
    ref = torch.nn.functional.binary_cross_entropy(p, y)
    assert float(fn([p, y], None, None)) == pytest.approx(float(ref))


def test_user_functions_get_inputs_and_kwargs_and_may_reduce_themselves():
    fn = compile_loss(Loss(f"{HERE}:per_sample_abs", {"scale": 2.0}))
    assert float(fn([OUT, TGT], None, None)) == pytest.approx(14 / 3)
    assert float(fn([OUT, TGT], W, None)) == pytest.approx(2 * 13 / 4)
    assert float(fn([OUT, TGT], None, M)) == pytest.approx(3.0)
    total = compile_loss(Loss(f"{HERE}:scalar_sum"))
    assert float(total([OUT, TGT], W, M)) == -7.0  # a scalar is not reduced again
    tf = pytest.importorskip("tensorflow")
    tf_fn = compile_loss(Loss(f"{HERE}:per_sample_abs"), "tensorflow")
    o, t = tf.constant([[1.0], [3.0]]), tf.constant([[2.0], [6.0]])
    assert float(tf_fn([o, t], tf.constant([3.0, 1.0]), None)) == pytest.approx(6 / 4)


def test_a_user_function_returning_no_tensor_is_a_training_error():
    fn = compile_loss(Loss(f"{HERE}:returns_a_float"))
    with pytest.raises(mml.TrainingError) as info:
        fn([OUT, TGT], None, None)
    assert str(info.value) == f"loss function {HERE}:returns_a_float returned a float, not a tensor"


def test_builtin_losses_compile_per_backend():
    fn = compile_loss(Loss("mae"))
    assert float(fn([OUT, TGT], None, None)) == pytest.approx(7 / 3)
    huber = compile_loss(Loss("huber", {"delta": 1.0}))
    ref = torch.nn.functional.huber_loss(OUT, TGT, delta=1.0)
    assert float(huber([OUT, TGT], None, None)) == pytest.approx(float(ref))
    # the kwargs reach the built-in loss (delta=0.5 is not the default)
    half = compile_loss(Loss("huber", {"delta": 0.5}))
    ref = torch.nn.functional.huber_loss(OUT, TGT, delta=0.5)
    assert float(half([OUT, TGT], None, None)) == pytest.approx(float(ref))
    assert float(ref) != pytest.approx(float(torch.nn.functional.huber_loss(OUT, TGT, delta=1.0)))


def test_check_loss_backend():
    torch_loss = AppliedLoss("torch.nn:L1Loss", "head")
    check_loss_backend(torch_loss, "torch")
    check_loss_backend(torch_loss, None)
    check_loss_backend(AppliedLoss("mse", "head"), "tensorflow")
    with pytest.raises(mml.BackendError) as info:
        check_loss_backend(torch_loss, "tensorflow")
    assert str(info.value) == (
        "loss 'head.L1Loss' is a torch loss (torch.nn:L1Loss) but node 'head' runs on tensorflow; "
        "use a built-in loss name (e.g. 'mse') or a tensorflow loss"
    )


class ScalarClass:
    """A loss class without a ``reduction`` argument that reduces by itself (a 0-d tensor)."""

    def __call__(self, outputs, targets):
        return (outputs - targets).abs().sum()


def test_a_class_returning_a_scalar_is_not_reduced_again():
    fn = compile_loss(Loss(f"{HERE}:ScalarClass"))
    got = fn([OUT, TGT], W, M)
    assert got.shape == () and float(got) == 7.0  # weights and mask are the class's business then


class Shaped:
    """Has a shape but no dtype: not a tensor."""

    shape = ()


def returns_shaped(outputs, targets):
    return Shaped()


def test_a_tensor_has_a_shape_and_a_dtype():
    fn = compile_loss(Loss(f"{HERE}:returns_shaped"))
    with pytest.raises(mml.TrainingError) as info:
        fn([OUT, TGT], None, None)
    assert str(info.value) == f"loss function {HERE}:returns_shaped returned a Shaped, not a tensor"


def test_a_keras_loss_class_gets_further_inputs_after_the_swapped_pair():
    tf = pytest.importorskip("tensorflow")
    fn = compile_loss(Loss("keras.losses:MeanAbsoluteError"), "tensorflow")
    o = tf.constant([[1.0], [3.0]])
    t = tf.constant([[2.0], [6.0]])
    # a third input is Keras' sample_weight: per-sample |t - o| = 1, 3 weighted by 2, 1, then the mean
    assert float(fn([o, t], None, None)) == pytest.approx(2.0)
    assert float(fn([o, t, tf.constant([2.0, 1.0])], None, None)) == pytest.approx((2 + 3) / 2)
