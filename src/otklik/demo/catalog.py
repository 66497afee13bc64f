"""The demo shop's product catalog: Russian and English names, realistic rouble prices."""

from __future__ import annotations

import math
import random
import re
from typing import TYPE_CHECKING, TypedDict

from otklik.demo.identities import translit

if TYPE_CHECKING:
    from otklik.demo.generator import DemoConfig

SHOP_URL = "https://shop.example.com"


class Product(TypedDict):
    product_id: str
    sku: str
    name: str
    category: str
    price: float
    url: str


# category -> (sku prefix, share of the catalog, [(Russian noun, English noun, low, high price)])
_KINDS: dict[str, tuple[str, int, list[tuple[str, str, int, int]]]] = {
    "electronics": (
        "EL",
        25,
        [
            ("Смартфон", "Smartphone", 9990, 89990),
            ("Беспроводные наушники", "Wireless Headphones", 1490, 24990),
            ("Умные часы", "Smart Watch", 2990, 39990),
            ("Ноутбук", "Laptop", 34990, 189990),
            ("Планшет", "Tablet", 12990, 79990),
            ("Портативная колонка", "Portable Speaker", 1990, 19990),
            ("Зарядное устройство", "Charger", 590, 3990),
            ("Электронная книга", "E-reader", 7990, 24990),
            ("Фитнес-браслет", "Fitness Band", 1490, 6990),
        ],
    ),
    "clothes": (
        "CL",
        25,
        [
            ("Футболка", "T-shirt", 590, 2990),
            ("Джинсы", "Jeans", 1990, 7990),
            ("Худи", "Hoodie", 1990, 6990),
            ("Куртка", "Jacket", 4990, 19990),
            ("Кроссовки", "Sneakers", 2990, 14990),
            ("Платье", "Dress", 1990, 9990),
            ("Свитер", "Sweater", 1990, 7990),
            ("Носки, 3 пары", "Socks, 3 pairs", 290, 990),
        ],
    ),
    "home": (
        "HM",
        18,
        [
            ("Кофеварка", "Coffee Maker", 2990, 24990),
            ("Набор кастрюль", "Cookware Set", 2490, 14990),
            ("Подушка", "Pillow", 690, 3490),
            ("Плед", "Throw Blanket", 990, 4990),
            ("Настольная лампа", "Desk Lamp", 1290, 6990),
            ("Робот-пылесос", "Robot Vacuum", 9990, 49990),
            ("Электрический чайник", "Electric Kettle", 1290, 6990),
            ("Постельное бельё", "Bed Linen Set", 1990, 8990),
        ],
    ),
    "books": ("BK", 14, []),  # books are titles, not noun + brand; see _BOOKS
    "beauty": (
        "BT",
        10,
        [
            ("Крем для лица", "Face Cream", 390, 3990),
            ("Шампунь", "Shampoo", 290, 1490),
            ("Парфюмерная вода", "Eau de Parfum", 1990, 12990),
            ("Гель для душа", "Shower Gel", 190, 890),
            ("Сыворотка для лица", "Face Serum", 590, 4990),
        ],
    ),
    "sports": (
        "SP",
        8,
        [
            ("Коврик для йоги", "Yoga Mat", 790, 3990),
            ("Гантели 2×5 кг", "Dumbbells 2×5 kg", 1990, 4990),
            ("Велосипед", "Bicycle", 14990, 79990),
            ("Бутылка для воды", "Water Bottle", 390, 1990),
            ("Рюкзак", "Backpack", 1490, 7990),
            ("Скакалка", "Jump Rope", 290, 1290),
        ],
    ),
}

# Invented brands so the demo never advertises a real company.
_BRANDS = {
    "electronics": ["Nova", "Helix", "Orbita", "Zenit", "Aurora", "Vector", "Pulsar"],
    "clothes": ["Nord", "Urban Line", "Taiga", "Sever", "Breeze", "Kedr"],
    "home": ["Uyut", "Domna", "Hearth", "Lumen", "Teplo"],
    "beauty": ["Flora", "Siyanie", "Aqua Vita", "Rosa"],
    "sports": ["Sprint", "Vershina", "Stayer", "Kometa"],
}
_MODELS = [
    "Lite",
    "Pro",
    "Max",
    "S3",
    "X5",
    "Classic",
    "Basic",
    "Sport",
    "Air",
    "Plus",
    "2",
    "Mini",
]

_BOOKS = [
    "Война и мир",
    "Преступление и наказание",
    "Анна Каренина",
    "Евгений Онегин",
    "Мёртвые души",
    "Отцы и дети",
    "Герой нашего времени",
    "Братья Карамазовы",
    "Основы программирования на Python",
    "Маркетинг без бюджета",
    "Кулинарная книга: 100 рецептов",
    "Pride and Prejudice",
    "Moby-Dick",
    "Great Expectations",
    "Jane Eyre",
    "Frankenstein",
    "Dracula",
    "The Picture of Dorian Gray",
    "Treasure Island",
]
_EDITIONS = [
    "",
    " (мягкая обложка)",
    " (подарочное издание)",
    " (Paperback)",
    " (Hardcover)",
    " (аудиокнига)",
]


def _rouble_price(rng: random.Random, low: int, high: int) -> float:
    """Log-uniform, then rounded the way shops price: 4 990, 12 490, 349."""
    raw = math.exp(rng.uniform(math.log(low), math.log(high)))
    if raw >= 1000:
        return float(max(low, round(raw / 500) * 500 - 10))
    return float(max(low, round(raw / 10) * 10 - 1))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", translit(name.lower())).strip("-")


def generate_catalog(cfg: DemoConfig) -> list[Product]:
    """`cfg.products` products; the same cfg always gives the same catalog."""
    rng = random.Random(f"otklik-demo:{cfg.seed}:catalog")
    categories = list(_KINDS)
    shares = [_KINDS[c][1] for c in categories]
    used: set[str] = set()
    products: list[Product] = []
    for i in range(cfg.products):
        category = rng.choices(categories, shares)[0]
        prefix, _share, kinds = _KINDS[category]
        if category == "books":
            name = rng.choice(_BOOKS) + rng.choice(_EDITIONS)
            price = _rouble_price(rng, 299, 2490)
        else:
            ru, en, low, high = rng.choice(kinds)
            brand = f"{rng.choice(_BRANDS[category])} {rng.choice(_MODELS)}"
            # Russian shops list most goods in Russian, imported ones often in English.
            name = f"{ru} {brand}" if rng.random() < 0.7 else f"{brand} {en}"
            price = _rouble_price(rng, low, high)
        base = name
        n = 2
        while name in used:  # a shop does not list two different goods under one name
            name = f"{base}, вариант {n}"
            n += 1
        used.add(name)
        product_id = f"p-{i + 1:05d}"
        products.append(
            Product(
                product_id=product_id,
                sku=f"{prefix}-{10001 + i}",
                name=name,
                category=category,
                price=round(price, 2),
                url=f"{SHOP_URL}/p/{product_id}-{_slug(name)}",
            )
        )
    return products
