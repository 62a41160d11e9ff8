"""HTML of the local Ctrip-like site: city list, hotel lists, hotel pages, error pages.

The pages look like a real travel site rather than a test fixture: the data a
crawler wants sits inside running text (``2008年开业&nbsp;&nbsp;2016年装修``),
next to navigation, adverts, recommendations and reviews that carry their own
hotel links and years, so a parser has to aim at the right block.
"""
import random
from html import escape

CAPTCHA_MARK = "访问过于频繁"

_HEAD = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<meta name="keywords" content="酒店预订,特价酒店,宾馆,住宿,%(keywords)s">
<link rel="stylesheet" href="/static/css/common.min.css?v=20240312">
<style>.hotel_item{border-bottom:1px solid #eee;padding:12px 0}.price b{color:#f60}
.hotel-info p{line-height:22px;color:#333}.crumb a{color:#06c}</style>
</head><body>
<div id="header"><a class="logo" href="/">携程旅行</a>
<ul class="nav"><li><a href="/">酒店</a></li><li><a href="/flights/">机票</a></li>
<li><a href="/trains/">火车票</a></li><li><a href="/vacation/">旅游</a></li>
<li><a href="/tickets/">门票</a></li><li><a href="/member/">我的携程</a></li></ul>
<div class="login"><a href="/login/">登录</a> | <a href="/register/">注册</a></div></div>
<div id="main">
"""

_FOOT = """</div>
<div id="footer"><p><a href="/about/">关于携程</a> | <a href="/help/">帮助中心</a> |
<a href="/jobs/">加入我们</a> | <a href="/privacy/">隐私政策</a> | <a href="/contact/">联系我们</a></p>
<p>客服电话 95010 &nbsp; Copyright&copy;1999-2024, ctrip.local. All rights reserved.</p></div>
<script>window.__pageId="%(page_id)s";(function(){var t=new Date().getTime();
document.cookie="_bfa="+t+";path=/";})();</script>
</body></html>
"""


def layout(title, body, page_id, keywords=""):
    """A whole page: common header, ``body`` and footer."""
    head = _HEAD % {"title": escape(title), "keywords": escape(keywords)}
    return head + body + _FOOT % {"page_id": page_id}


def index_page(catalog):
    """The city list: one ``a.city`` per city, with its hotel count."""
    items = "".join(
        '<li><a class="city" href="/hotels/%s/">%s</a><span class="num">%d家酒店</span></li>\n'
        % (city.slug, city.name, city.count) for city in catalog.cities
    )
    body = ('<div class="search-box"><input type="text" placeholder="目的地/酒店名称/关键词">'
            '<button>搜索</button></div>\n<h2>热门城市</h2>\n<ul class="city_list">\n%s</ul>\n'
            % items)
    return layout("酒店预订_特价酒店_宾馆住宿-携程", body, "index")


def list_page(catalog, city, number):
    """List page ``number`` of ``city``: up to 20 ``li.hotel_item`` and a ``a.next`` link."""
    hotels = catalog.page(city, number)
    items = "".join(_hotel_item(hotel) for hotel in hotels) or '<li class="empty">暂无酒店</li>'
    pager = '<span class="current">%d / %d</span>' % (number, city.pages)
    if number > 1:
        pager = '<a class="prev" href="%s">上一页</a> ' % _list_path(city, number - 1) + pager
    if number < city.pages:
        pager += ' <a class="next" href="%s">下一页</a>' % _list_path(city, number + 1)
    body = (
        '<div class="crumb"><a href="/">首页</a> &gt; <span>%s酒店</span></div>\n'
        '<p class="result">%s共有<b>%d</b>家酒店</p>\n%s'
        '<ul class="hotel_list">\n%s</ul>\n<div class="pager">%s</div>\n'
        % (city.name, city.name, city.count, _advert(catalog, city, number), items, pager)
    )
    return layout("%s酒店预订_第%d页-携程" % (city.name, number), body, "list")


def hotel_page(hotel, neighbours):
    """A hotel's own page; ``neighbours`` are shown as recommendations."""
    rng = random.Random("page/%s" % hotel.id)
    renovated = "%d年装修&nbsp;&nbsp;" % hotel.renovated if hotel.renovated else ""
    info = (
        '<div class="hotel-info">\n<p class="basic-info">%d年开业&nbsp;&nbsp;%s客房数：%d</p>\n'
        '<p class="desc">%s</p>\n</div>\n'
        % (hotel.opened, renovated, hotel.rooms, _description(rng))
    )
    return layout(hotel.name + "预订价格_联系电话_地址-携程", _hotel_body(hotel, info, neighbours, rng),
                  "hotel")


def broken_hotel_page(hotel, neighbours):
    """A hotel page whose information block is missing (the site's own bug)."""
    rng = random.Random("page/%s" % hotel.id)
    notice = '<div class="notice">酒店信息加载失败，请稍后再试。</div>\n'
    return layout(hotel.name + "-携程", _hotel_body(hotel, notice, neighbours, rng), "hotel")


def captcha_page():
    """The anti-bot page answered with status 200 instead of the content."""
    body = (
        '<div class="verify-box"><h2>%s，请稍后再试</h2>\n'
        '<p>为了保障您的账户安全，请完成下方验证后继续访问。</p>\n'
        '<form id="captcha-form" method="post" action="/verify/">'
        '<img class="captcha" src="/verify/captcha.jpg?t=1712000000" alt="验证码">'
        '<input type="text" name="code" maxlength="4" placeholder="请输入验证码">'
        '<input type="hidden" name="token" value="c2l0ZS1hbnRpYm90">'
        '<button type="submit">验证</button></form></div>\n' % CAPTCHA_MARK
    )
    return layout("安全验证-携程", body, "verify")


def error_page(status, message):
    return layout("%d %s" % (status, message), "<h1>%d</h1><p>%s</p>\n" % (status, message), "error")


def _list_path(city, number):
    return "/hotels/%s/" % city.slug if number == 1 else "/hotels/%s/p%d/" % (city.slug, number)


def _hotel_item(hotel):
    name = escape(hotel.name)
    return (
        '<li class="hotel_item" data-id="%s"><div class="pic"><img src="/img/h/%s_1.jpg" alt=""></div>\n'
        '<h2 class="hotel_name"><a href="/hotel/%s.html" title="%s" target="_blank">%s</a></h2>\n'
        '<span class="star s%d"></span><p class="addr">%s</p>\n'
        '<div class="price">&yen;<b>%d</b>起</div><div class="score">%.1f分 <span>%d条点评</span></div>'
        '</li>\n'
        % (hotel.id, hotel.id, hotel.id, name, name, hotel.stars, escape(hotel.address), hotel.price,
           hotel.score, hotel.rooms * 7 % 3000)
    )


def _advert(catalog, city, number):
    """A sponsored hotel of the same city, outside ``ul.hotel_list`` and not a ``hotel_item``."""
    if not city.count:
        return ""
    hotel = catalog.hotel(city.first + (number * 7) % city.count)
    return ('<div class="ad_box"><span class="tag">广告</span> <a href="/hotel/%s.html">%s</a> '
            '限时特惠 &yen;%d</div>\n' % (hotel.id, escape(hotel.name), hotel.price * 8 // 10))


_HOTEL_BODY = """<div class="crumb"><a href="/">首页</a> &gt; <a class="crumb-city" \
href="/hotels/%(slug)s/">%(city)s酒店</a> &gt; <span>%(name)s</span></div>
<div class="hotel-head" data-hotel-id="%(id)s"><h1 class="hotel-title">%(name)s</h1>\
<span class="star s%(stars)d"></span>
<p class="address">地址：%(address)s <a class="map" href="#map">查看地图</a></p>
<div class="price-box">&yen;<b>%(price)d</b>起 <a class="book" href="/book/%(id)s/">立即预订</a></div></div>
%(info)s<table class="room-list"><tr><th>房型</th><th>床型</th><th>早餐</th><th>价格</th><th></th></tr>
%(rooms)s</table>
<div class="facilities"><h3>酒店设施</h3><ul>%(facilities)s</ul></div>
%(policy)s<div class="reviews"><h3>住客点评 <span>%(score).1f分</span></h3><ul>%(reviews)s</ul></div>
<div class="recommend"><h3>附近酒店推荐</h3><ul>%(recommended)s</ul></div>
"""


def _hotel_body(hotel, info, neighbours, rng):
    """Everything of a hotel page but the layout; ``info`` is the block a parser looks for."""
    recommended = "".join('<li><a href="/hotel/%s.html">%s</a> &yen;%d起</li>'
                          % (other.id, escape(other.name), other.price) for other in neighbours)
    return _HOTEL_BODY % {
        "slug": hotel.city.slug, "city": hotel.city.name, "name": escape(hotel.name), "id": hotel.id,
        "stars": hotel.stars, "address": escape(hotel.address), "price": hotel.price, "info": info,
        "rooms": _rooms(rng, hotel), "facilities": _facilities(rng), "policy": _POLICY,
        "score": hotel.score, "reviews": _reviews(rng), "recommended": recommended,
    }


_FACILITIES = ("免费WiFi", "停车场", "餐厅", "健身房", "游泳池", "会议室", "行李寄存", "24小时前台",
               "洗衣服务", "接机服务", "叫醒服务", "电梯", "无烟楼层", "商务中心", "儿童乐园")
_PHRASES = ("酒店地理位置优越，交通便利，周边餐饮购物娱乐设施齐全。",
            "客房装饰典雅，配备舒适床品和独立卫浴，让您宾至如归。",
            "酒店设有中西餐厅，提供丰富的自助早餐。", "步行可达地铁站，距离市中心约十分钟车程。",
            "酒店服务周到热情，是商务出行和休闲度假的理想之选。",
            "部分客房可欣赏城市景观，夜景迷人。", "酒店提供免费停车位和行李寄存服务。")
_REVIEWS = ("房间干净整洁，服务很好，下次还会再来。", "位置方便，离地铁很近，早餐种类丰富。",
            "性价比高，前台小姐姐很热情。", "隔音一般，其他都还不错。", "设施略旧，但是打扫得很干净。",
            "带孩子入住，酒店送了小礼物，很贴心。", "床很舒服，睡得很好，推荐！")


_ROOM_TYPES = (("标准间", "双床1.2米"), ("大床房", "大床1.8米"), ("高级大床房", "大床2米"),
               ("豪华双床房", "双床1.35米"), ("行政套房", "大床2米"), ("家庭房", "大床1.8米+单人床1.2米"))
_POLICY = (
    '<div class="policy"><h3>酒店政策</h3><dl><dt>入住和离店</dt><dd>入住时间：14:00以后&nbsp;&nbsp;'
    '离店时间：12:00以前</dd><dt>儿童及加床</dt><dd>不接受18岁以下客人单独入住。每间客房最多容纳1名'
    '儿童，使用现有床铺。</dd><dt>早餐</dt><dd>自助早餐 &yen;58/人，供应时间 07:00-10:00</dd>'
    '<dt>宠物</dt><dd>不可携带宠物。</dd><dt>支付方式</dt><dd>酒店接受以下信用卡：银联、VISA、'
    'MasterCard，支持支付宝和微信支付。</dd></dl>'
    '<p class="tip">温馨提示：节假日期间价格可能上涨，请以预订页面显示为准。</p></div>\n'
)


def _rooms(rng, hotel):
    rows = []
    for room, bed in rng.sample(_ROOM_TYPES, 4):
        rows.append('<tr><td class="room">%s</td><td>%s</td><td>%s</td><td class="price">&yen;%d</td>'
                    '<td><a class="book" href="/book/%s/?room=%d">预订</a></td></tr>\n'
                    % (room, bed, rng.choice(("无早", "单早", "双早")),
                       hotel.price + rng.randint(0, 600), hotel.id, rng.randint(10000, 99999)))
    return "".join(rows)


def _facilities(rng):
    return "".join("<li>%s</li>" % item for item in rng.sample(_FACILITIES, 8))


def _description(rng):
    return "".join(rng.sample(_PHRASES, 4))


def _reviews(rng):
    lines = []
    for _ in range(8):
        lines.append('<li><span class="user">用户%04d</span> <span class="date">%d年%d月入住</span> %s</li>'
                     % (rng.randint(0, 9999), rng.randint(2015, 2024), rng.randint(1, 12),
                        rng.choice(_REVIEWS)))
    return "".join(lines)

