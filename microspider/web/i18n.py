"""The dashboard's labels in English and Chinese: one dict, English as the fallback."""

LANGUAGES = ("en", "zh")

LABELS = {
    "title": ("microspider dashboard", "microspider 仪表盘"),
    "spiders": ("Spiders", "爬虫"),
    "spider": ("spider", "爬虫"),
    "links": ("Links between spiders", "爬虫之间的链接"),
    "no_spiders": ("No spider has run on this Redis yet.", "此 Redis 上还没有运行过爬虫。"),
    "state": ("state", "状态"),
    "running": ("running", "运行中"),
    "waiting": ("waiting on upstream", "等待上游"),
    "finished": ("finished", "已完成"),
    "stopped": ("stopped", "已停止"),
    "work": ("work", "待抓取"),
    "backlog": ("backlog", "积压"),
    "backlog_due": ("backlog due", "积压(到期)"),
    "backlog_waiting": ("backlog waiting", "积压(等待)"),
    "backlog_over_age": ("backlog over age", "积压(超龄)"),
    "in_flight": ("in flight", "处理中"),
    "quarantined": ("quarantined", "隔离"),
    "cached": ("cached", "已缓存"),
    "failures": ("failures", "失败"),
    "items": ("items", "数据项"),
    "workers": ("live workers", "存活进程"),
    "pages_per_s": ("pages/s (last minute)", "页/秒(最近一分钟)"),
    "chart": ("pages/s, last hour", "页/秒,最近一小时"),
    "hour_ago": ("1 h ago", "1 小时前"),
    "peak": ("peak", "峰值"),
    "waits_on": ("waits on", "等待"),
    "updated": ("updated", "更新于"),
    "failures_by_error": ("Failures by error", "按错误分类的失败"),
    "error": ("error", "错误"),
    "count": ("count", "数量"),
    "backlog_by_age": ("Backlog by age", "按重试次数的积压"),
    "age": ("age", "重试次数"),
    "seeds": ("seeds", "种子"),
    "parked": ("parked (over max age)", "已搁置(超龄)"),
    "backlog_partial": ("counted over the first %d seeds only", "仅统计前 %d 个种子"),
    "stored_failures": ("Stored failures", "已存储的失败"),
    "showing": ("showing %d of %d, oldest first", "显示 %d / %d,最早的在前"),
    "seed": ("seed", "种子"),
    "status": ("status", "状态码"),
    "attempts": ("attempts", "尝试次数"),
    "message": ("message", "消息"),
    "traceback": ("traceback", "调用栈"),
    "headers": ("headers", "响应头"),
    "body": ("body (as text)", "响应体(文本)"),
    "body_sandbox": ("body rendered in a sandbox (no scripts)", "在沙箱中渲染的响应体(禁用脚本)"),
    "show_sandbox": ("render in sandbox", "在沙箱中渲染"),
    "no_body": ("no response stored", "没有存储响应"),
    "truncated": ("(first %d bytes of %d)", "(前 %d 字节,共 %d)"),
    "actions": ("Actions", "操作"),
    "token": ("token", "令牌"),
    "retry": ("Retry stored failures", "重试已存储的失败"),
    "relay": ("Relay backlog now", "立即转移积压"),
    "unpark": ("Unpark seeds up to age", "解除搁置,最大重试次数"),
    "back": ("back", "返回"),
    "done": ("Done", "完成"),
    "forbidden": ("Forbidden: a correct token is needed, from this dashboard's own pages.",
                  "禁止:需要正确的令牌,并且请求须来自本仪表盘页面。"),
    "not_found": ("Not found", "未找到"),
    "method": ("Method not allowed: actions are POST only", "方法不允许:操作只接受 POST"),
    "bad_max_age": ("Bad request: max_age must be a whole number >= 0", "请求错误:max_age 必须是 >= 0 的整数"),
    "unavailable": ("Redis or the store does not answer", "Redis 或存储无响应"),
    "language": ("中文", "English"),
    "retried": ("%d seeds sent to the work queue, %d taken out of the backlog, %d malformed left alone",
                "%d 个种子已送回待抓取队列,%d 个移出积压,%d 个格式错误未处理"),
    "relayed": ("%d seeds moved to the work queue, %d stayed in the backlog",
                "%d 个种子已移至待抓取队列,%d 个留在积压中"),
    "unparked": ("%d parked seeds will come back from the backlog", "%d 个已搁置的种子将从积压中返回"),
}


def translator(lang):
    """t(label) in `lang`; an unknown label is shown as is."""
    index = 1 if lang == "zh" else 0
    return lambda label: LABELS[label][index] if label in LABELS else label


def language(query_value):
    return query_value if query_value in LANGUAGES else "en"
