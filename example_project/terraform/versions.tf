terraform {
  required_version = ">= 1.6"

  # 6.23 added aws_ecs_express_gateway_service, but with nested blocks where these files write attribute lists
  # (scaling_target, aws_logs_configuration) and without ingress_paths; the pull request that reworked the resource
  # was merged on 2026-06-05, when 6.46.0 was already out. 6.60.0 is the first release we can show runs the schema
  # used here (hashicorp/terraform-provider-aws#49511 reports it with scaling_target as an attribute); no form of
  # these nested values is accepted by both schemas, so an older provider fails at plan time, not at apply.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.60, < 7.0"
    }
  }
}

locals {
  default_tags = {
    Project   = var.service_name
    ManagedBy = "terraform"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.default_tags
  }
}

# The second region's service, its alarms and its alarm topic (multi_region.tf); var.region when there is none.
provider "aws" {
  alias  = "secondary"
  region = local.two_regions ? var.secondary_region : var.region

  default_tags {
    tags = local.default_tags
  }
}

# CloudFront's ACM certificates and Route 53 health check metrics live in us-east-1 whatever the service's region.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}
