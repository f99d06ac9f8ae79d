# Auto scaling is its own App Runner resource (apprunner.yaml cannot configure it): at least one instance
# always warm, at most ten, and a new one whenever an instance has 100 requests in flight.
resource "aws_apprunner_auto_scaling_configuration_version" "app" {
  auto_scaling_configuration_name = "${var.service_name}-scaling"
  min_size                        = var.min_instances
  max_size                        = var.max_instances
  max_concurrency                 = var.max_concurrency
}

resource "aws_apprunner_observability_configuration" "app" {
  observability_configuration_name = "${var.service_name}-xray"

  trace_configuration {
    vendor = "AWSXRAY"
  }
}

resource "aws_apprunner_service" "app" {
  service_name                   = var.service_name
  auto_scaling_configuration_arn = aws_apprunner_auto_scaling_configuration_version.app.arn

  source_configuration {
    # Deployments are explicit: the deploy workflow pushes an immutable tag and calls update-service.
    auto_deployments_enabled = false

    authentication_configuration {
      access_role_arn = aws_iam_role.ecr_access.arn
    }

    image_repository {
      image_identifier      = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
      image_repository_type = "ECR"

      image_configuration {
        port = "8080"
        runtime_environment_variables = {
          DJANGO_ALLOWED_HOSTS      = join(",", compact([".awsapprunner.com", ".cloudfront.net", var.allowed_hosts]))
          DJANGO_BEHIND_TLS_PROXY   = "true"
          DJANGO_MIGRATE_ON_START   = "false"
          GUNICORN_WORKERS          = tostring(var.gunicorn_workers)
          SERVICE_NAME              = var.service_name
          SERVICE_VERSION           = var.image_tag
          ENABLE_XRAY               = tostring(var.enable_xray)
          ENABLE_OTEL               = tostring(var.enable_otel)
          OTEL_AWS_SIGV4            = tostring(var.enable_otel)
          ENABLE_CLOUDWATCH_METRICS = tostring(var.enable_cloudwatch_metrics)
        }
        runtime_environment_secrets = {
          DJANGO_SECRET_KEY      = var.secret_key_secret_arn
          DATABASE_URL           = var.database_url_secret_arn
          PRODKIT_METRICS_TOKENS = var.metrics_tokens_secret_arn
        }
      }
    }
  }

  instance_configuration {
    cpu               = var.cpu
    memory            = var.memory
    instance_role_arn = aws_iam_role.instance.arn
  }

  # Liveness only: it touches no database, so a database blip does not make App Runner replace every instance.
  health_check_configuration {
    protocol            = "HTTP"
    path                = "/api/v1/healthcheck/"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 1
    unhealthy_threshold = 3
  }

  observability_configuration {
    observability_enabled           = var.enable_xray
    observability_configuration_arn = var.enable_xray ? aws_apprunner_observability_configuration.app.arn : null
  }

  # The deploy workflow rolls out new images (immutable tags); Terraform owns everything else.
  lifecycle {
    ignore_changes = [source_configuration[0].image_repository[0].image_identifier]
  }

  depends_on = [aws_iam_role_policy_attachment.ecr_access]
}
