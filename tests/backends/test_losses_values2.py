"""``loss_function`` with a name no framework implements: the message in full, both frameworks.

``mml.training.Loss`` validates its name first, so through training this is never reached;
``loss_function`` itself is public to the package and takes any string.
"""

from __future__ import annotations

import pytest

from mml.backends._losses import loss_function
from mml.errors import ConfigError


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_an_unknown_loss_name_is_a_config_error(framework: str) -> None:
    pytest.importorskip(framework)
    with pytest.raises(ConfigError) as e:
        loss_function(framework, "hinge_squared", {})
    assert str(e.value) == "unknown loss 'hinge_squared'"
    assert callable(loss_function(framework, "mse"))
