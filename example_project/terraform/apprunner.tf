# Auto scaling is its own App Runner resource (apprunner.yaml cannot configure it): at least one instance
# always warm, at most ten, and a new one whenever an instance has 100 requests in flight.
resource "aws_apprunner_auto_scaling_configuration_version" "app" {
  count                           = local.apprunner ? 1 : 0
  auto_scaling_configuration_name = "${var.service_name}-scaling"
  min_size                        = var.min_instances
  max_size                        = var.max_instances
  max_concurrency                 = var.max_concurrency
}

resource "aws_apprunner_observability_configuration" "app" {
  count                            = local.apprunner ? 1 : 0
  observability_configuration_name = "${var.service_name}-xray"

  trace_configuration {
    vendor = "AWSXRAY"
  }
}

resource "aws_apprunner_service" "app" {
  count                          = local.apprunner ? 1 : 0
  service_name                   = var.service_name
  auto_scaling_configuration_arn = aws_apprunner_auto_scaling_configuration_version.app[0].arn

  source_configuration {
    # Deployments are explicit: the deploy workflow pushes an immutable tag and calls update-service.
    auto_deployments_enabled = false

    authentication_configuration {
      access_role_arn = aws_iam_role.ecr_access[0].arn
    }

    image_repository {
      image_identifier      = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
      image_repository_type = "ECR"

      image_configuration {
        port                          = tostring(local.container_port)
        runtime_environment_variables = local.app_environment
        runtime_environment_secrets   = local.app_secrets
      }
    }
  }

  instance_configuration {
    cpu               = var.cpu
    memory            = var.memory
    instance_role_arn = aws_iam_role.instance.arn
  }

  health_check_configuration {
    protocol            = "HTTP"
    path                = local.health_check_path
    interval            = 10
    timeout             = 5
    healthy_threshold   = 1
    unhealthy_threshold = 3
  }

  observability_configuration {
    observability_enabled           = var.enable_xray
    observability_configuration_arn = var.enable_xray ? aws_apprunner_observability_configuration.app[0].arn : null
  }

  # The deploy workflow rolls out new images (immutable tags); Terraform owns everything else.
  lifecycle {
    ignore_changes = [source_configuration[0].image_repository[0].image_identifier]
  }

  depends_on = [aws_iam_role_policy_attachment.ecr_access]
}
