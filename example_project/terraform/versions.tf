terraform {
  required_version = ">= 1.6"

  # 6.23 added aws_ecs_express_gateway_service.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.23, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = var.service_name
      ManagedBy = "terraform"
    }
  }
}

# CloudFront's ACM certificates must live in us-east-1 whatever the service's region.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}
