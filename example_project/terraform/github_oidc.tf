# Lets .github/workflows/deploy-example.yml deploy without long-lived keys: GitHub's OIDC token for a push to
# main of var.github_repository is exchanged for this role's short-lived credentials.
resource "aws_iam_openid_connect_provider" "github" {
  count          = var.github_repository == "" ? 0 : 1
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "deploy" {
  count = var.github_repository == "" ? 0 : 1
  name  = "${var.service_name}-github-deploy"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.github[0].arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
          "token.actions.githubusercontent.com:sub" = "repo:${var.github_repository}:environment:production"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "deploy" {
  count = var.github_repository == "" ? 0 : 1
  name  = "push-and-deploy"
  role  = aws_iam_role.deploy[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*"
      },
      {
        Sid    = "EcrPush"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
          "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart",
        ]
        Resource = aws_ecr_repository.app.arn
      },
    ], local.deploy_statements[var.platform])
  })
}

# What the deploy job may do to the service, per platform: roll out a new image and watch it.
locals {
  express_service_arns = concat(module.express[*].service_arn, module.express_secondary[*].service_arn)
  deploy_statements = {
    apprunner = [
      {
        Sid      = "AppRunnerDeploy"
        Effect   = "Allow"
        Action   = ["apprunner:UpdateService", "apprunner:DescribeService", "apprunner:ListOperations"]
        Resource = [local.service_arn, "${local.service_arn}/*"]
      },
      {
        Sid      = "PassEcrAccessRole"
        Effect   = "Allow"
        Action   = ["iam:PassRole"]
        Resource = aws_iam_role.ecr_access[*].arn
      },
    ]
    ecs_express = [
      {
        Sid      = "ExpressDeploy"
        Effect   = "Allow"
        Action   = ["ecs:UpdateExpressGatewayService", "ecs:DescribeExpressGatewayService"]
        Resource = local.express_service_arns
      },
      # wait_for_deployment.py follows the deployment the update started until ECS calls it SUCCESSFUL.
      {
        Sid      = "FindTheDeployment"
        Effect   = "Allow"
        Action   = ["ecs:ListServiceDeployments"]
        Resource = local.express_service_arns
      },
      {
        Sid    = "FollowTheDeployment"
        Effect = "Allow"
        Action = ["ecs:DescribeServiceDeployments"]
        Resource = [
          for region in compact([var.region, local.two_regions ? var.secondary_region : ""]) :
          "arn:aws:ecs:${region}:${data.aws_caller_identity.current.account_id}:service-deployment/${var.service_name}/${var.service_name}/*"
        ]
      },
      # The second region's deploy step waits for ECR's replica of the image.
      {
        Sid      = "FindTheReplicatedImage"
        Effect   = "Allow"
        Action   = ["ecr:DescribeImages"]
        Resource = ["arn:aws:ecr:*:${data.aws_caller_identity.current.account_id}:repository/${var.service_name}"]
      },
      {
        Sid      = "PassTaskRoles"
        Effect   = "Allow"
        Action   = ["iam:PassRole"]
        Resource = concat([aws_iam_role.instance.arn], aws_iam_role.execution[*].arn)
      },
    ]
  }
}
