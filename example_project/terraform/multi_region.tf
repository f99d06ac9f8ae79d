# A second region (var.secondary_region, ECS Express only): the same service there, Route 53 health checks on each
# region's readiness endpoint, a failover pair of records that CloudFront uses as its origin, and the alarms in
# both regions. docs/deploying.md ("Two regions") explains the choices and what only a first deploy shows.
locals {
  two_regions = local.express && var.secondary_region != ""
  # Readiness, not liveness: a region whose database is unreachable must lose the traffic.
  readiness_path = "/api/v1/healthcheck/ready/"
  # Secrets Manager replicas keep the secret's name and suffix; only the region in the ARN differs.
  secondary_secrets = {
    for name, arn in local.app_secrets : name => replace(arn, ":${var.region}:", ":${var.secondary_region}:")
  }
  secondary_image = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.secondary_region}.amazonaws.com/${var.service_name}:${var.image_tag}"
  # The regions Route 53 chooses between: PRIMARY while its health check passes, else SECONDARY.
  failover_targets = local.two_regions ? {
    PRIMARY   = one(module.express[*].endpoint_host)
    SECONDARY = one(module.express_secondary[*].endpoint_host)
  } : {}
}

# The image in the second region comes from ECR's own replication, so a deployment there does not depend on the
# first region being up. Note: this is the registry's (account and region) only replication configuration.
resource "aws_ecr_replication_configuration" "secondary" {
  count = local.two_regions ? 1 : 0

  replication_configuration {
    rule {
      destination {
        region      = var.secondary_region
        registry_id = data.aws_caller_identity.current.account_id
      }
      repository_filter {
        filter      = var.service_name
        filter_type = "PREFIX_MATCH"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.secondary_region != var.region && var.failover_domain_name != "" && var.hosted_zone_id != ""
      error_message = "secondary_region must differ from region, and needs failover_domain_name and hosted_zone_id."
    }
  }
}

# CloudWatch alarms notify a topic in their own region.
resource "aws_sns_topic" "alarms_secondary" {
  count    = local.two_regions ? 1 : 0
  provider = aws.secondary
  name     = "${var.service_name}-alarms"

  # checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed key; alarm messages hold no secrets.
}

resource "aws_sns_topic_subscription" "email_secondary" {
  count     = local.two_regions && var.alarm_email != "" ? 1 : 0
  provider  = aws.secondary
  topic_arn = aws_sns_topic.alarms_secondary[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "express_secondary" {
  source    = "./modules/express_service"
  count     = local.two_regions ? 1 : 0
  providers = { aws = aws.secondary }

  settings        = local.express_service
  image           = local.secondary_image
  secrets         = local.secondary_secrets
  alarm_topic_arn = aws_sns_topic.alarms_secondary[0].arn

  depends_on = [
    aws_ecr_replication_configuration.secondary,
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy_attachment.infrastructure,
  ]
}

# Each region probed directly at its own endpoint, not through CloudFront: through CloudFront a probe reaches
# whichever region the failover pair points at, and could not tell the two apart.
resource "aws_route53_health_check" "region" {
  for_each          = local.failover_targets
  fqdn              = each.value
  type              = "HTTPS"
  port              = 443
  enable_sni        = true
  resource_path     = local.readiness_path
  request_interval  = 30
  failure_threshold = 3

  tags = {
    Name = "${var.service_name}-${lower(each.key)}"
  }
}

resource "aws_route53_record" "failover" {
  for_each        = local.failover_targets
  zone_id         = var.hosted_zone_id
  name            = var.failover_domain_name
  type            = "CNAME"
  ttl             = 60
  records         = [each.value]
  set_identifier  = "${var.service_name}-${lower(each.key)}"
  health_check_id = aws_route53_health_check.region[each.key].id

  failover_routing_policy {
    type = each.key
  }
}

# CloudFront checks that the origin's certificate names the origin: each region's load balancer needs one for
# the failover name beside Express Mode's own (attach it once per region, docs/deploying.md shows the command).
resource "aws_acm_certificate" "failover" {
  count             = local.two_regions ? 1 : 0
  domain_name       = var.failover_domain_name
  validation_method = "DNS"

  # A renewed or changed certificate exists before the listener lets go of the old one.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_acm_certificate" "failover_secondary" {
  count             = local.two_regions ? 1 : 0
  provider          = aws.secondary
  domain_name       = var.failover_domain_name
  validation_method = "DNS"

  # A renewed or changed certificate exists before the listener lets go of the old one.
  lifecycle {
    create_before_destroy = true
  }
}

# ACM asks for the same validation record in every region for one name and account.
resource "aws_route53_record" "failover_validation" {
  for_each = {
    for option in flatten(aws_acm_certificate.failover[*].domain_validation_options) : option.domain_name => option
  }
  zone_id         = var.hosted_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}
