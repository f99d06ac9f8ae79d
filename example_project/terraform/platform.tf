# Which AWS service runs the container: App Runner (closed to new customers since 2026-04-30) or, for accounts
# that cannot create App Runner services, Amazon ECS Express Mode. Both get the same image, environment, secrets,
# health check path, 1-10 instances and CloudFront in front; only the resources that differ depend on var.platform.
locals {
  apprunner = var.platform == "apprunner"
  express   = var.platform == "ecs_express"

  container_port = 8080
  # Liveness only: it touches no database, so a database blip does not get every instance replaced.
  health_check_path = "/api/v1/healthcheck/"

  # The host names the platform gives the service: CloudFront forwards them as Host, so Django must accept them.
  platform_hosts = local.apprunner ? ".awsapprunner.com" : ".on.aws"

  # App Runner runs the X-Ray daemon for the service; an Express service has one container and no daemon.
  app_environment = {
    DJANGO_ALLOWED_HOSTS      = join(",", compact([local.platform_hosts, ".cloudfront.net", var.allowed_hosts]))
    DJANGO_BEHIND_TLS_PROXY   = "true"
    DJANGO_MIGRATE_ON_START   = "false"
    GUNICORN_WORKERS          = tostring(var.gunicorn_workers)
    SERVICE_NAME              = var.service_name
    SERVICE_VERSION           = var.image_tag
    ENABLE_XRAY               = tostring(var.enable_xray && local.apprunner)
    ENABLE_OTEL               = tostring(var.enable_otel)
    OTEL_AWS_SIGV4            = tostring(var.enable_otel)
    ENABLE_CLOUDWATCH_METRICS = tostring(var.enable_cloudwatch_metrics)
    CLOUDWATCH_DIMENSIONS     = join(",", [for name, value in var.cloudwatch_dimensions : "${name}=${value}"])
  }
  app_secrets = {
    DJANGO_SECRET_KEY      = var.secret_key_secret_arn
    DATABASE_URL           = var.database_url_secret_arn
    PRODKIT_METRICS_TOKENS = var.metrics_tokens_secret_arn
  }

  # The origin CloudFront forwards to: the App Runner URL, the Express service's endpoint, or with a second
  # region the Route 53 failover name in front of both Express services (multi_region.tf).
  origin_domain = (
    local.apprunner
    ? one(aws_apprunner_service.app[*].service_url)
    : local.two_regions ? var.failover_domain_name : one(module.express[*].endpoint_host)
  )
  service_arn = local.apprunner ? one(aws_apprunner_service.app[*].arn) : one(module.express[*].service_arn)
}
