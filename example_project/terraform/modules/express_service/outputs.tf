output "service_arn" {
  description = "ARN of the Express service (an ECS service ARN: the deploy workflow's ECS_EXPRESS_SERVICE_ARN)."
  value       = aws_ecs_express_gateway_service.app.service_arn
}

output "endpoint_host" {
  description = "Host name of the service's HTTPS endpoint (the API may give the endpoint with its scheme)."
  value       = trimsuffix(trimprefix(aws_ecs_express_gateway_service.app.ingress_paths[0].endpoint, "https://"), "/")
}

output "alarm_arns" {
  description = "ARNs of the error rate, response time and 5xx alarms."
  value = [
    aws_cloudwatch_metric_alarm.error_rate.arn,
    aws_cloudwatch_metric_alarm.latency.arn,
    aws_cloudwatch_metric_alarm.server_errors.arn,
  ]
}
