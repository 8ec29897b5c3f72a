"""The book's default configurations (Géron, *Hands-On Machine Learning*, Tables 11-3 and 11-4).

The tables are qualitative: they name an initializer, an activation, a normalization, a regularization, an
optimizer and a schedule, and leave every number open. :data:`ASSUMPTIONS` writes down, once, each value
autodnn chooses where the book is silent; the baselines below are built from the tables and those
assumptions only, and the report prints both.
"""

from __future__ import annotations

from dataclasses import dataclass

from autodnn.config import TrialConfig

#: Table 11-3, "Default DNN configuration", word for word (2nd and 3rd editions).
TABLE_11_3: dict[str, dict[str, str]] = {
    "Kernel initializer": {"2e": "He initialization", "3e": "He initialization"},
    "Activation function": {"2e": "ELU", "3e": "ReLU if shallow; Swish if deep"},
    "Normalization": {"2e": "None if shallow; Batch Norm if deep", "3e": "None if shallow; batch norm if deep"},
    "Regularization": {"2e": "Early stopping (+ℓ2 reg. if needed)", "3e": "Early stopping; weight decay if needed"},
    "Optimizer": {"2e": "Momentum optimization (or RMSProp or Nadam)",
                  "3e": "Nesterov accelerated gradients or AdamW"},
    "Learning rate schedule": {"2e": "1cycle", "3e": "Performance scheduling or 1cycle"},
}

#: Table 11-4, "DNN configuration for a self-normalizing net", word for word (2nd and 3rd editions).
TABLE_11_4: dict[str, dict[str, str]] = {
    "Kernel initializer": {"2e": "LeCun initialization", "3e": "LeCun initialization"},
    "Activation function": {"2e": "SELU", "3e": "SELU"},
    "Normalization": {"2e": "None (self-normalization)", "3e": "None (self-normalization)"},
    "Regularization": {"2e": "Alpha dropout if needed", "3e": "Alpha dropout if needed"},
    "Optimizer": {"2e": "Momentum optimization (or RMSProp or Nadam)", "3e": "Nesterov accelerated gradients"},
    "Learning rate schedule": {"2e": "1cycle", "3e": "Performance scheduling or 1cycle"},
}

#: Which configuration field each table row decides.
ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "Kernel initializer": ("initializer", "init_distribution"),
    "Activation function": ("activation",),
    "Normalization": ("normalization",),
    "Regularization": ("patience", "l2", "weight_decay", "alpha_dropout"),
    "Optimizer": ("optimizer", "momentum"),
    "Learning rate schedule": ("schedule",),
}

#: Every value the book leaves open, as autodnn fills it in.
ASSUMPTIONS: dict[str, str] = {
    "depth and width": "exercise 8's 20 hidden layers of 100 units, unless the study's space fixes both",
    "deep": "more than 5 hidden layers counts as deep (exercise 8's 20 layers is deep by any reading), so the "
            "3rd edition's Swish and both editions' batch norm apply to it",
    "learning rate": "the learning-rate finder's pick (1e-5 to 10 over at most 500 batches, about 10x below "
                     "the turning point); 1cycle uses it as its peak and a tenth of it as its start",
    "batch size": "32, Keras' default and the book's (Masters & Luschi: small batches)",
    "early stopping": "patience 10 epochs on validation loss, best weights restored",
    "batch norm": "before the activation, dense layers without bias, momentum 0.99 (Keras' default)",
    "momentum": "0.9 for momentum and Nesterov optimization, cycled 0.95 -> 0.85 -> 0.95 under 1cycle",
    "optional regularization": "'if needed' is read as not needed: no l2, no weight decay, no alpha dropout",
    "choices between alternatives": "the first one the table names: momentum optimization (2nd), Nesterov "
                                    "(3rd); 1cycle (2nd), performance scheduling (3rd, factor 0.5, patience 5)",
    "initializer distribution": "normal (He normal, LeCun normal), as the book's code uses",
}

DEEP_LAYERS = 5


@dataclass(frozen=True)
class Baseline:
    """A named book configuration.

    Attributes:
        name: ``book-2e``, ``book-3e`` or ``book-selu``.
        title: What the reader sees.
        source: Which table and edition it instantiates.
        config: The concrete configuration.
    """

    name: str
    title: str
    source: str
    config: TrialConfig


#: Chapter 10's regression baseline (2nd edition): ``build_model(n_hidden=1, n_neurons=30, learning_rate=3e-3)``,
#: ``Dense(n_neurons, activation="relu")`` (Keras' Glorot uniform), ``SGD(learning_rate)``, MSE, trained with
#: ``EarlyStopping(patience=10)``; the kept weights are the best validation loss's, as in every autodnn run.
CHAPTER_10 = Baseline(
    "book-ch10", "Chapter 10's build_model defaults (2nd edition)", "Chapter 10, 2nd edition (build_model)",
    TrialConfig(n_hidden=1, n_units=30, activation="relu", initializer="glorot", init_distribution="uniform",
                optimizer="sgd", learning_rate=3e-3, batch_size=32, patience=10, output_bias="zeros"),
)


#: Chapter 14's CNN (3rd edition, the Fashion-MNIST network), adapted only in its input shape:
#: ``DefaultConv2D = partial(Conv2D, kernel_size=3, padding="same", activation="relu",
#: kernel_initializer="he_normal")``; ``DefaultConv2D(64, kernel_size=7)``, ``MaxPool2D()``, two
#: ``DefaultConv2D(128)``, ``MaxPool2D()``, two ``DefaultConv2D(256)``, ``MaxPool2D()``, ``Flatten()``,
#: ``Dense(128, relu, he_normal)``, ``Dropout(0.5)``, ``Dense(64, relu, he_normal)``, ``Dropout(0.5)``, the softmax
#: output; compiled with ``optimizer="nadam"`` (Keras' learning rate, 1e-3) and trained for ``epochs=10`` at
#: Keras' batch size of 32, without early stopping (a patience of 10 never stops 10 epochs) and without
#: augmentation. autodnn keeps the epoch of best validation loss, as in every run.
BOOK_CNN = Baseline(
    "book-cnn", "The book's CNN (chapter 14, 3rd edition)", "Chapter 14, 3rd edition (DefaultConv2D network)",
    TrialConfig(family="conv", stem_kernel=7, conv_filters=64, stem_downsample=True, conv_groups=2, conv_blocks=2,
                filter_growth=2.0, kernel_size=3, conv_block="plain", downsample="max_pool", conv_head="flatten",
                n_hidden=2, n_units=64, first_layer_factor=2.0, dropout=0.5, dropout_placement="all",
                activation="relu", initializer="he", init_distribution="normal", normalization="none",
                optimizer="nadam", learning_rate=1e-3, batch_size=32, epochs=10, patience=10, output_bias="zeros"),
)


def book_baselines(n_hidden: int = 20, n_units: int = 100, *, regression: bool = False) -> tuple[Baseline, ...]:
    """The three book defaults, concrete, for a net of ``n_hidden`` x ``n_units`` (a regression's output is one
    linear unit, :func:`autodnn.network.model.build_model`), and for a regression chapter 10's :data:`CHAPTER_10`.

    Args:
        n_hidden: Hidden layers (exercise 8's 20 unless a study fixes depth).
        n_units: Units per hidden layer (exercise 8's 100 unless a study fixes width).
        regression: Whether the study is a regression.
    """
    deep = n_hidden > DEEP_LAYERS
    common = {"n_hidden": n_hidden, "n_units": n_units, "lr_finder": True, "batch_size": 32, "patience": 10,
              "init_distribution": "normal", "bn_momentum": 0.99, "output_bias": "zeros"}
    normalization = "batch_norm_before" if deep else "none"
    second = TrialConfig(
        **common, initializer="he", activation="elu", elu_alpha=1.0, normalization=normalization,
        optimizer="momentum", momentum=0.9, schedule="1cycle",
    )
    third = TrialConfig(
        **common, initializer="he", activation="swish" if deep else "relu", normalization=normalization,
        optimizer="nesterov", momentum=0.9, schedule="performance", plateau_factor=0.5, plateau_patience=5,
    )
    selu = TrialConfig(
        **common, initializer="lecun", activation="selu", normalization="none", optimizer="nesterov",
        momentum=0.9, schedule="performance", plateau_factor=0.5, plateau_patience=5,
    )
    return (
        Baseline("book-2e", "Book defaults, 2nd edition (Table 11-3)", "Table 11-3, 2nd edition", second),
        Baseline("book-3e", "Book defaults, 3rd edition (Table 11-3)", "Table 11-3, 3rd edition", third),
        Baseline("book-selu", "Self-normalizing net (Table 11-4, 3rd edition)", "Table 11-4, 3rd edition", selu),
        *((CHAPTER_10,) if regression else ()),
    )


#: The author's exercise-8 results on CIFAR-10 validation data (solution notebooks; book-reference.md §7),
#: shown as reference rows in reports of CIFAR-10 studies. Validation, not test accuracy: the notebooks
#: never evaluate on the test set.
PUBLISHED_CIFAR10: tuple[dict[str, object], ...] = (
    {"variant": "20x100 He + ELU, Nadam, early stopping", "edition": "2nd", "val_accuracy": 0.4762},
    {"variant": "+ batch norm", "edition": "2nd", "val_accuracy": 0.5398},
    {"variant": "SELU + LeCun, standardized inputs", "edition": "2nd", "val_accuracy": 0.4792},
    {"variant": "SELU + alpha dropout 0.1", "edition": "2nd", "val_accuracy": 0.4890},
    {"variant": "1cycle, SGD, batch 128, 15 epochs", "edition": "2nd", "val_accuracy": 0.5198},
    {"variant": "20x100 He + Swish, Nadam, early stopping", "edition": "3rd", "val_accuracy": 0.4676},
    {"variant": "+ batch norm", "edition": "3rd", "val_accuracy": 0.5074},
    {"variant": "SELU + LeCun, standardized inputs", "edition": "3rd", "val_accuracy": 0.5026},
    {"variant": "SELU + alpha dropout 0.1", "edition": "3rd", "val_accuracy": 0.4982},
    {"variant": "1cycle, SGD, batch 128, 15 epochs", "edition": "3rd", "val_accuracy": 0.5242},
)
