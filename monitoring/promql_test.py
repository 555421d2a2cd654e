"""The tokenizer finds exactly the metric names of expressions like the rules'."""

from monitoring.promql import metric_names


def test_aggregations_matchers_and_ranges() -> None:
    expr = """sum by (namespace, le) (rate(syncbridge_edge_errors_total{code!~"a|b", x='y'}[5m]))
      / on (namespace) group_left(pod) max(kube_pod_info offset 5m) > bool 0.01"""
    assert metric_names(expr) == {"syncbridge_edge_errors_total", "kube_pod_info"}


def test_recorded_names_and_set_operators() -> None:
    expr = "namespace:a:rate5m > (14.4 * 0.001) and namespace:b:rate1h unless up == 0 or vector(1)"
    assert metric_names(expr) == {"namespace:a:rate5m", "namespace:b:rate1h", "up"}


def test_functions_with_string_arguments() -> None:
    expr = 'label_replace(histogram_quantile(0.95, x_bucket), "dst", "$1", "src", "(.*)")'
    assert metric_names(expr) == {"x_bucket"}
