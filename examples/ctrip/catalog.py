"""The hotels of the local Ctrip-like site, computed lazily from a seed.

Nothing is built per hotel up front: a hotel is drawn from ``(seed, index)``
when asked for, so a catalog of 300,000 hotels costs a few kilobytes until
someone walks it.  Hotel ids look like Ctrip's (seven digits, not sequential):
an affine permutation of the index, reversible without a lookup table.

>>> catalog = Catalog(hotels=200, seed=1)
>>> hotel = catalog.hotel(0)
>>> catalog.hotel_by_id(hotel.id) == hotel
True
"""
import bisect
import random
from dataclasses import dataclass, field
from math import gcd
from typing import Optional

PAGE_SIZE = 20

CITIES = (
    ("北京", "beijing"), ("上海", "shanghai"), ("广州", "guangzhou"), ("深圳", "shenzhen"),
    ("成都", "chengdu"), ("杭州", "hangzhou"), ("重庆", "chongqing"), ("西安", "xian"),
    ("南京", "nanjing"), ("武汉", "wuhan"), ("苏州", "suzhou"), ("天津", "tianjin"),
    ("长沙", "changsha"), ("青岛", "qingdao"), ("厦门", "xiamen"), ("三亚", "sanya"),
    ("昆明", "kunming"), ("大连", "dalian"), ("郑州", "zhengzhou"), ("沈阳", "shenyang"),
    ("济南", "jinan"), ("哈尔滨", "haerbin"), ("福州", "fuzhou"), ("合肥", "hefei"),
    ("南宁", "nanning"), ("贵阳", "guiyang"), ("桂林", "guilin"), ("丽江", "lijiang"),
    ("拉萨", "lasa"), ("乌鲁木齐", "wulumuqi"), ("兰州", "lanzhou"), ("太原", "taiyuan"),
    ("石家庄", "shijiazhuang"), ("南昌", "nanchang"), ("宁波", "ningbo"), ("无锡", "wuxi"),
    ("珠海", "zhuhai"), ("海口", "haikou"), ("呼和浩特", "huhehaote"), ("西宁", "xining"),
)
BRANDS = (
    "如家", "汉庭", "全季", "亚朵", "锦江之星", "7天", "维也纳", "希尔顿欢朋", "万豪", "洲际",
    "香格里拉", "喜来登", "桔子水晶", "城市便捷", "莫泰", "格林豪泰", "M&M精品", "丽枫",
    "宜必思", "智选假日", "和颐", "开元", "华住会",
)
KINDS = ("酒店", "大酒店", "精选酒店", "酒店公寓", "客栈", "度假酒店", "商务酒店")
AREAS = (
    "火车站", "机场", "市中心", "高铁站", "步行街", "万达广场", "大学城", "开发区", "高新区",
    "会展中心", "人民广场", "新城", "老城区", "体育中心", "滨江", "湖畔", "东站", "西站",
    "南站", "北站",
)
STREETS = ("人民路", "解放路", "中山路", "建设路", "长江路", "文化路", "和平路", "新华路", "滨河路")

ID_BASE = 1_000_000
ID_SPACE = 9_000_000  # ids stay seven digits for up to nine million hotels


@dataclass(frozen=True)
class City:
    name: str
    slug: str
    first: int  # index of its first hotel
    count: int

    @property
    def pages(self):
        """Number of list pages; an empty city still has one (empty) page."""
        return max(1, -(-self.count // PAGE_SIZE))


@dataclass(frozen=True)
class Hotel:
    index: int
    id: str
    name: str
    city: City = field(repr=False)
    opened: int
    renovated: Optional[int]
    rooms: int
    stars: int
    price: int
    score: float
    address: str
    broken: bool

    def truth(self):
        """The record a correct crawl must produce for this hotel."""
        return {"_id": self.id, "name": self.name, "city": self.city.name, "opened": self.opened,
                "renovated": self.renovated, "broken": self.broken}


class Catalog:
    """Every city and hotel of one site, deterministic from ``seed``."""

    def __init__(self, hotels=3000, seed=1, broken=None):
        if not 0 <= hotels <= ID_SPACE:
            raise ValueError("hotels must be between 0 and %d" % ID_SPACE)
        self.size = hotels
        self.seed = seed
        rng = random.Random("%s/catalog" % seed)
        self.cities = _share_out(hotels, rng)
        self._firsts = [city.first for city in self.cities]
        self._by_slug = {city.slug: city for city in self.cities}
        self._mul, self._add = _permutation(rng)
        self._unmul = pow(self._mul, -1, ID_SPACE)
        wanted = max(3, hotels // 1000) if broken is None else broken
        self.broken = frozenset(rng.sample(range(hotels), min(wanted, hotels)))

    def city(self, slug):
        """The city with this slug, or None."""
        return self._by_slug.get(slug)

    def page(self, city, number):
        """The hotels on list page ``number`` (from 1) of ``city``."""
        start = city.first + (number - 1) * PAGE_SIZE
        stop = min(start + PAGE_SIZE, city.first + city.count)
        return [self.hotel(index) for index in range(start, stop)]

    def hotel(self, index):
        """The hotel at ``index`` (0 <= index < size)."""
        rng = random.Random("%s/hotel/%d" % (self.seed, index))
        city = self.cities[bisect.bisect_right(self._firsts, index) - 1]
        opened = rng.randint(1985, 2022)
        renovated = rng.randint(opened + 1, 2024) if rng.random() < 0.7 else None
        name = "%s%s(%s%s店)" % (rng.choice(BRANDS), rng.choice(KINDS), city.name, rng.choice(AREAS))
        address = "%s%s%d号" % (city.name, rng.choice(STREETS), rng.randint(1, 999))
        return Hotel(
            index=index, id=self.hotel_id(index), name=name, city=city, opened=opened,
            renovated=renovated, rooms=rng.randint(12, 650), stars=rng.randint(2, 5),
            price=rng.randint(89, 2400), score=round(rng.uniform(3.2, 4.9), 1), address=address,
            broken=index in self.broken,
        )

    def hotel_id(self, index):
        return str(ID_BASE + (index * self._mul + self._add) % ID_SPACE)

    def hotel_by_id(self, hotel_id):
        """The hotel with this id (a string of digits), or None."""
        if not hotel_id.isdigit():
            return None
        index = (int(hotel_id) - ID_BASE - self._add) * self._unmul % ID_SPACE
        if index >= self.size or self.hotel_id(index) != hotel_id:
            return None
        return self.hotel(index)

    def truth(self):
        """Yield the truth record of every hotel, in index order."""
        for index in range(self.size):
            yield self.hotel(index).truth()


def _share_out(hotels, rng):
    """Cities with an uneven share of ``hotels`` (big cities first), at least one each if possible."""
    weights = [rng.uniform(0.6, 1.4) / (rank + 1) ** 0.9 for rank in range(len(CITIES))]
    floor = 1 if hotels >= len(CITIES) else 0
    spare = hotels - floor * len(CITIES)
    shares = [spare * weight / sum(weights) for weight in weights]
    counts = [floor + int(share) for share in shares]
    by_remainder = sorted(range(len(CITIES)), key=lambda i: int(shares[i]) - shares[i])
    for i in by_remainder[: hotels - sum(counts)]:
        counts[i] += 1
    cities, first = [], 0
    for (name, slug), count in zip(CITIES, counts):
        cities.append(City(name=name, slug=slug, first=first, count=count))
        first += count
    return cities


def _permutation(rng):
    """Multiplier and offset of an affine bijection on ``range(ID_SPACE)``."""
    while True:
        mul = rng.randrange(1_000_003, ID_SPACE)
        if gcd(mul, ID_SPACE) == 1:
            return mul, rng.randrange(ID_SPACE)
