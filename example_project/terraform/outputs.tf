output "platform" {
  description = "The service the container runs on (var.platform); the deploy workflow's DEPLOY_PLATFORM variable."
  value       = var.platform
}

output "service_url" {
  description = "HTTPS URL of the App Runner or ECS Express service (the CloudFront origin)."
  value       = "https://${local.origin_domain}"
}

output "service_arn" {
  description = "ARN of the service; the deploy workflow's ECS_EXPRESS_SERVICE_ARN or APP_RUNNER_SERVICE_ARN variable."
  value       = local.service_arn
}

output "cloudfront_url" {
  description = "The public HTTPS URL: the CloudFront distribution in front of the service."
  value       = "https://${aws_cloudfront_distribution.app.domain_name}"
}

output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations)."
  value       = aws_cloudfront_distribution.app.id
}

output "ecr_repository_url" {
  description = "ECR repository the deploy workflow pushes images to."
  value       = aws_ecr_repository.app.repository_url
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of App Runner's metrics; null on ECS Express (use manage.py cloudwatch_dashboard)."
  value       = one(aws_cloudwatch_dashboard.app[*].dashboard_name)
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes through GitHub OIDC (the AWS_DEPLOY_ROLE_ARN secret); null without github_repository."
  value       = one(aws_iam_role.deploy[*].arn)
}

output "secondary_service_arn" {
  description = "ARN of the second region's Express service (the deploy workflow's ECS_EXPRESS_SECONDARY_SERVICE_ARN); null with one region."
  value       = one(module.express_secondary[*].service_arn)
}

output "failover_certificate_arns" {
  description = "ACM certificates for failover_domain_name, by region, to add to each Express load balancer's HTTPS listener once (docs/deploying.md); empty with one region."
  value = local.two_regions ? {
    (var.region)           = aws_acm_certificate.failover[0].arn
    (var.secondary_region) = aws_acm_certificate.failover_secondary[0].arn
  } : {}
}
